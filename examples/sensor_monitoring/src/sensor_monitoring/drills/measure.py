"""A drill's figures, from three witnesses that do not depend on each other: what the sensors say
they produced (their reports in the merged ``--json`` summary), what Kafka holds (a scan of
``sensor-data`` after the plant stopped) and what PostgreSQL stored (``readings``, ``alerts``,
``system_events``). See docs/examples/sensor_monitoring_drills.md for each definition.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from forge_core.plugin import DrillFigure, DrillReport
from sensor_monitoring.drills.observe import LagSampler, Record


@dataclass
class Stored:
    """What PostgreSQL holds at the end of the drill."""

    readings: dict[tuple[str, int], tuple[float, float | None]]  # (sensor, seq) -> (stored_at, ts)
    rows: int  # rows of readings (a duplicate would make rows > len(readings))
    alerts: list[dict[str, Any]]
    events: list[dict[str, Any]]

    @classmethod
    def load(cls, engine: sa.Engine) -> Stored:
        with engine.connect() as conn:
            readings = {(r.sensor_id, int(r.seq)): (float(r.stored_at), r.ts) for r in conn.execute(
                sa.text("SELECT sensor_id, seq, stored_at, ts FROM readings"))}
            rows = int(conn.execute(sa.text("SELECT count(*) FROM readings")).scalar() or 0)
            alerts = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM alerts"))]
            events = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM system_events ORDER BY id"))]
        return cls(readings, rows, alerts, events)


@dataclass
class Injected:
    """An anomaly the drill injected by command, and the alert it must raise."""

    sensor_id: str
    anomaly: str
    at: float
    severity: str = "critical"


@dataclass
class Window:
    """The drill's moments (epoch seconds) and the bounds its figures are judged by."""

    since: float  # the warm-up's start: the backlog before the fault is the baseline
    fault: float
    heal: float
    end: float
    recovery_bound: float
    drain_bound: float
    sensors: int  # the backlog counts as drained at its level before the fault, and never below this
    bound_note: str = ""


def produced_by_sensors(summary: dict[str, Any]) -> dict[str, set[int]] | None:
    """sensor id -> every seq its lives say they published: ``reports[<sensors instance>]["sensors"]
    [<sensor id>]["lives"]``, each life ``first_seq..last_seq``. None when no report says so."""
    found: dict[str, set[int]] = defaultdict(set)
    for report in (summary.get("reports") or {}).values():
        sensors = report.get("sensors") if isinstance(report, dict) else None
        if not isinstance(sensors, dict):
            continue
        for sensor_id, sensor in sensors.items():
            for life in (sensor.get("lives") or []) if isinstance(sensor, dict) else []:
                first, last = life.get("first_seq"), life.get("last_seq")
                if isinstance(first, int) and isinstance(last, int):
                    found[str(sensor_id)].update(range(first, last + 1))
    return dict(found) if found else None


def lost_note(lost: list[tuple[str, int]], on_topic: Counter[tuple[str, int]]) -> str:
    """Which lost readings Kafka holds (not consumed and stored before the stop) and which it never got (the
    producer's side): the first place to look when one is lost."""
    kept = [key for key in lost if key in on_topic]
    return (f"first: {lost[:5]}; on Kafka: {len(kept)} of {len(lost)}"
            + (f" (first: {kept[:3]})" if kept and len(kept) < len(lost) else ""))


def episodes(records: Iterable[Record]) -> Iterator[tuple[str, str, int, int, float]]:
    """(sensor, anomaly, first seq, last seq, time of the first reading) of each run of labelled readings."""
    by_sensor: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_sensor[r.sensor_id].append(r)
    for sensor, rs in by_sensor.items():
        current: list[Record] = []
        for r in sorted({r.seq: r for r in rs}.values(), key=lambda r: r.seq):
            if current and (r.anomaly != current[0].anomaly):
                if current[0].anomaly:
                    yield sensor, str(current[0].anomaly), current[0].seq, current[-1].seq, _time(current[0])
                current = []
            current.append(r)
        if current and current[0].anomaly:
            yield sensor, str(current[0].anomaly), current[0].seq, current[-1].seq, _time(current[0])


def _time(r: Record) -> float:
    return r.ts if r.ts is not None else r.timestamp


def alerts_raised_twice(alerts: list[dict[str, Any]]) -> list[str]:
    """Alerts raised while the same sensor's same rule already had one raised (not cleared at that seq)."""
    twice: list[str] = []
    by_rule: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        by_rule[(a["sensor_id"], a["rule"])].append(a)
    for rows in by_rule.values():
        rows.sort(key=lambda a: int(a["reading_seq"]))
        for before, after in itertools.pairwise(rows):
            cleared = before.get("cleared_seq")
            if cleared is None or int(cleared) > int(after["reading_seq"]):
                twice.append(str(after["alert_id"]))
    return twice


def recovery(records: list[Record], stored: Stored, fault: float) -> tuple[float | None, dict[int, float | None]]:
    """Per partition: from the fault to the first reading produced after it being stored. The slowest
    partition is the drill's time to recover (None: a partition stored nothing produced after the fault)."""
    partition_of = {(r.sensor_id, r.seq): r.partition for r in records}
    first: dict[int, float | None] = {p: None for p in {r.partition for r in records}}
    for key, (stored_at, ts) in stored.readings.items():
        p = partition_of.get(key)
        if p is None or ts is None or float(ts) < fault:
            continue
        if first[p] is None or stored_at < first[p]:  # type: ignore[operator]
            first[p] = stored_at
    per = {p: (None if at is None else round(at - fault, 2)) for p, at in sorted(first.items())}
    worst = None if not per or any(v is None for v in per.values()) else max(v for v in per.values() if v is not None)
    return worst, per


def measure(report: DrillReport, *, summary: dict[str, Any], lives: dict[str, list[dict[str, Any]]],
            records: list[Record], stored: Stored, lag: LagSampler, window: Window,
            injected: list[Injected]) -> None:
    """Add the common figures to ``report`` (scenarios add their own before or after)."""
    on_topic = Counter((r.sensor_id, r.seq) for r in records)
    produced = produced_by_sensors(summary)
    produced_keys = {(s, q) for s, seqs in (produced or {}).items() for q in seqs}
    expected = produced_keys | set(on_topic)
    lost = sorted(expected - stored.readings.keys())
    phantom = sorted(stored.readings.keys() - expected)
    report.add(DrillFigure.info("readings produced", len(produced_keys) if produced else len(on_topic),
                                note="" if produced else "the sensors' reports were not found: counted from the topic"))
    report.add(DrillFigure.info("readings on Kafka", len(on_topic)))
    report.add(DrillFigure.info("readings stored", len(stored.readings)))
    report.add(DrillFigure.equal("readings lost", len(lost), 0, note=lost_note(lost, on_topic) if lost
                                 else "produced or on Kafka, not stored"))
    report.add(DrillFigure.equal("duplicate readings stored", stored.rows - len(stored.readings) + len(phantom), 0,
                                 note=f"stored but never produced: {phantom[:5]}" if phantom else ""))
    twice = alerts_raised_twice(stored.alerts)
    report.add(DrillFigure.equal("alerts raised twice", len(twice), 0, note=", ".join(twice[:5])))
    redelivered = sum(_numbers(life.get("reports", {}), "redelivered") for name, runs in lives.items()
                      if name.startswith("processors") for life in runs)
    report.add(DrillFigure.info("readings redelivered", redelivered,
                                note="delivered again after a rebalance and not stored again (clean lives only)"))
    report.add(DrillFigure.info("records written to Kafka twice", sum(n - 1 for n in on_topic.values() if n > 1)))

    # alerts: every critical anomaly the drill injected raised a critical alert of that sensor
    missed = []
    for inj in injected:
        runs = [(first, last) for s, a, first, last, t in episodes(records)
                if s == inj.sensor_id and a == inj.anomaly and t >= inj.at - 2.0]
        hit = any(a["sensor_id"] == inj.sensor_id and a["severity"] == inj.severity and first <= int(a["reading_seq"])
                  <= last + 5 for first, last in runs[:1] for a in stored.alerts)
        if not hit:
            missed.append(f"{inj.anomaly} on {inj.sensor_id} at +{inj.at - window.fault:.0f}s"
                          + ("" if runs else " (no labelled reading found)"))
    raised = Counter(str(a["severity"]) for a in stored.alerts)
    report.add(DrillFigure.info("alerts raised", sum(raised.values()),
                                note=", ".join(f"{n} {s}" for s, n in sorted(raised.items()))))
    report.add(DrillFigure.info("critical anomalies injected", len(injected)))
    report.add(DrillFigure.equal("missed critical alerts", len(missed), 0, note="; ".join(missed)))

    worst, per = recovery(records, stored, window.fault)
    report.add(DrillFigure.at_most("time to recover", worst, window.recovery_bound, "s", note=window.bound_note))
    report.details["recovery_per_partition"] = per

    peak = lag.peak(window.fault, window.end)
    report.add(DrillFigure.info("consumer lag peak", peak.total if peak else None, "records",
                                note=(f"the group's committed offsets behind the log end, at "
                                      f"+{peak.at - window.fault:.1f}s, per partition {peak.lag}") if peak else ""))
    series = backlog(stored, window.since, window.end)
    threshold = max([n for t, n in series if t < window.fault] + [window.sensors])
    top = max((p for p in series if p[0] >= window.fault), key=lambda p: p[1], default=None)
    report.add(DrillFigure.info("backlog peak", top[1] if top else None, "readings",
                                note=f"produced, not yet stored, at +{top[0] - window.fault:.1f}s" if top else ""))
    peak_at = top[0] if top else window.fault
    drained = drained_at(series, peak_at, threshold)
    drain = None if drained is None else round(max(0.0, drained - peak_at), 1)
    report.add(DrillFigure.at_most("lag drain time", drain, window.drain_bound, "s",
                                   note=f"from the backlog's peak until it is back to <= {threshold} readings "
                                        f"(its level before the fault) for 1 s"))
    report.details["backlog"] = [(round(t - window.fault, 1), n) for t, n in series][::4]
    events = [e for e in stored.events if e["source"] != "drill" and window.fault <= float(e["at"]) <= window.end]
    kinds = Counter(str(e["kind"]) for e in events if e["kind"] != "consumer_status")  # status rows: not rebalances
    report.add(DrillFigure.info("rebalances after the fault", kinds.get("partitions_assigned", 0),
                                note=", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))))
    failed = [f"{c.get('component')}: {c.get('name')}" for c in summary.get("checks", []) if not c.get("passed")]
    report.add(DrillFigure.equal("plant checks failed", len(failed), 0, note="; ".join(failed[:5])))
    report.details.update(lag_samples=len(lag.samples), lag_sample_failures=lag.failed,
                          lag=[(round(s.at - window.fault, 1), s.total) for s in lag.samples][::4])


def backlog(stored: Stored, start: float, end: float, step: float = 0.25) -> list[tuple[float, int]]:
    """(time, readings produced by then and not stored yet) every ``step`` seconds from ``start`` to ``end``:
    the end-to-end lag, from the readings' own timestamps and the processors' ``stored_at``."""
    made = sorted(float(ts) for _, ts in stored.readings.values() if ts is not None)
    kept = sorted(at for at, _ in stored.readings.values())
    out: list[tuple[float, int]] = []
    t = start
    while t <= end:
        out.append((t, max(0, bisect.bisect_right(made, t) - bisect.bisect_right(kept, t))))
        t += step
    return out


def drained_at(series: list[tuple[float, int]], after: float, threshold: int, hold: float = 1.0) -> float | None:
    """The first time at or after ``after`` from which the backlog stays <= ``threshold`` for ``hold`` seconds."""
    since: float | None = None
    for t, n in series:
        if t < after:
            continue
        if n <= threshold:
            since = t if since is None else since
            if t - since >= hold:
                return since
        else:
            since = None
    return None


def _numbers(node: Any, key: str) -> int:
    """Sum of every integer ``key`` anywhere in ``node`` (a report's nesting is the component's)."""
    if isinstance(node, dict):
        return sum(int(v) if k == key and isinstance(v, int) else _numbers(v, key) for k, v in node.items())
    if isinstance(node, list):
        return sum(_numbers(v, key) for v in node)
    return 0
