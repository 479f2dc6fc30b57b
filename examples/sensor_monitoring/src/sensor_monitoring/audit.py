"""The plant's whole-run checks: what the sensors produced against what the database holds.

Run once per plant run over the merged summary (``forge_plant_checks``): the sensors' reports say
what each *life* of each sensor published (:mod:`sensor_monitoring.lives`: epoch, seqs, and
``recent_from``, the first seq published in the last ``checks.in_flight`` seconds), the ``readings`` and
``alerts`` tables of forge-mms say what the processors stored and raised, and the readings' ground-truth ``anomaly``
labels say what was injected. Definitions (docs/examples/sensor_monitoring.md#checks):

* **episode** — a maximal run of stored readings of one sensor life with consecutive seqs and the same
  non-null ``anomaly`` label; it spans ``[start, end]``, the timestamps of its first and last reading.
  Its *window* is ``[start, end + settle]``.
* **stored exactly once** — for every reported life, every seq in ``first_seq..last_seq`` is in
  ``readings`` once (the primary key makes twice impossible; ``count(*) == count(DISTINCT seq)`` is
  checked anyway). A seq missing but from the life's ``recent_from`` on (published within ``in_flight``
  seconds of its report) was in flight when the plant stopped: counted, not lost. Seqs stored above
  ``last_seq`` were published after the report (one-process runs report before stopping).
* **every injected anomaly alerted** — every episode has an alert of its sensor (any rule) raised by
  a reading whose timestamp is in the episode's window. An episode whose window reaches past the
  life's last stored reading is *open at the end*: not judged, counted.
* **no alert without an anomaly** — every alert raised by a reading of a reported life has that
  reading's timestamp in the window of an episode of the same life.
* **alerts cleared** — an alert still ``raised`` at the end is allowed only on a sensor whose last life
  has an episode whose window reaches its last stored reading (still in, or just after, an anomaly).
"""

from __future__ import annotations

import logging
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from forge_core import Check, parse_time
from sensor_monitoring.lives import SEQ_SPAN

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from forge_core.runtime import RunSummary, Runtime

log = logging.getLogger("sensor_monitoring.audit")
PROCESSOR = "mms.sensor_processor"
SHOWN = 5  # examples listed in a failing check's detail


def _seconds(value: Any) -> float | None:
    """A stored timestamp (epoch seconds, datetime or RFC 3339 text) in epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return parse_time(value)
    return float(value)


@dataclass
class Episode:
    sensor_id: str
    epoch: int
    anomaly: str
    first_seq: int
    last_seq: int
    start: float
    end: float

    def covers(self, at: float, settle: float) -> bool:
        return self.start <= at <= self.end + settle

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.anomaly} seq {self.first_seq}..{self.last_seq}"


@dataclass
class Alert:
    alert_id: str
    sensor_id: str
    rule: str
    severity: str
    state: str
    reading_seq: int
    at: float | None  # timestamp of the reading that raised it

    def __str__(self) -> str:
        return f"{self.alert_id} ({self.severity}, {self.state})"


@dataclass
class Audit:
    """The figures of one run (``audit``); ``checks()`` turns them into the plant's four checks."""

    settle: float
    sensors: int = 0
    lives: int = 0
    produced: int = 0
    stored: int = 0
    duplicates: int = 0
    in_flight: int = 0  # published within in_flight s of the report, not stored: in flight at stop
    after_report: int = 0  # stored with a seq above the reported last one: published after the report
    lost: dict[str, list[int]] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    alerted: list[Episode] = field(default_factory=list)
    missed: list[Episode] = field(default_factory=list)
    open_at_end: list[Episode] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    unexplained: list[Alert] = field(default_factory=list)
    uncleared: list[Alert] = field(default_factory=list)
    uncleared_allowed: list[Alert] = field(default_factory=list)

    @property
    def lost_count(self) -> int:
        return sum(len(seqs) for seqs in self.lost.values())

    def figures(self) -> dict[str, Any]:
        """Plain numbers, for reports and drills."""
        return {"sensors": self.sensors, "lives": self.lives, "produced": self.produced, "stored": self.stored,
                "lost": self.lost_count, "duplicates": self.duplicates, "in_flight_at_stop": self.in_flight,
                "after_report": self.after_report, "anomalies": len(self.episodes), "alerted": len(self.alerted),
                "missed": len(self.missed), "open_at_end": len(self.open_at_end), "alerts": len(self.alerts),
                "unexplained_alerts": len(self.unexplained), "uncleared_alerts": len(self.uncleared),
                "by_anomaly": _by_anomaly(self.episodes, self.alerted)}

    def checks(self) -> list[Check]:
        lost = "; ".join(f"{sid}: {_seqs(seqs)}" for sid, seqs in list(self.lost.items())[:SHOWN])
        stored = Check("every produced reading stored exactly once", not self.lost and not self.duplicates,
                       f"{self.produced} produced by {self.lives} lives of {self.sensors} sensors, {self.stored} "
                       f"stored, {self.lost_count} lost, {self.duplicates} duplicated, {self.in_flight} in flight at "
                       f"stop, {self.after_report} published after the report" + (f"; lost: {lost}" if lost else ""))
        judged = len(self.alerted) + len(self.missed)
        alerted = Check("every injected anomaly alerted", not self.missed,
                        f"{judged} anomalies judged, {len(self.alerted)} alerted, {len(self.missed)} missed, "
                        f"{len(self.open_at_end)} open at the end (not judged)"
                        + (f"; missed: {_some(self.missed)}" if self.missed else ""))
        explained = Check("no alert without an injected anomaly", not self.unexplained,
                          f"{len(self.alerts)} alerts, {len(self.unexplained)} outside every anomaly's window "
                          f"(+{self.settle:g} s)" + (f": {_some(self.unexplained)}" if self.unexplained else ""))
        cleared = Check("alerts cleared after anomalies end", not self.uncleared,
                        f"{len(self.uncleared) + len(self.uncleared_allowed)} still raised at the end, "
                        f"{len(self.uncleared_allowed)} on sensors still in an anomaly's window"
                        + (f"; not cleared: {_some(self.uncleared)}" if self.uncleared else ""))
        return [stored, alerted, explained, cleared]


def _some(items: Iterable[object]) -> str:
    listed = [str(i) for i in items]
    return ", ".join(listed[:SHOWN]) + (f" and {len(listed) - SHOWN} more" if len(listed) > SHOWN else "")


def _seqs(seqs: list[int]) -> str:
    return ", ".join(map(str, seqs[:SHOWN])) + (f" ... ({len(seqs)})" if len(seqs) > SHOWN else "")


def _by_anomaly(episodes: list[Episode], alerted: list[Episode]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for e in episodes:
        row = out.setdefault(e.anomaly, {"injected": 0, "alerted": 0})
        row["injected"] += 1
    for e in alerted:
        out[e.anomaly]["alerted"] += 1
    return out


# -- what the sensors reported ---------------------------------------------------------------------
def reported_lives(summary: RunSummary) -> dict[str, list[dict[str, Any]]]:
    """sensor id -> its lives as its instance reported them (every sensors instance of the run)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for report in summary.reports.values():
        sensors = report.get("sensors") if isinstance(report, dict) else None
        if not isinstance(sensors, dict):
            continue
        for sensor_id, view in sensors.items():
            if isinstance(view, dict) and isinstance(view.get("lives"), list):
                found.setdefault(sensor_id, []).extend(view["lives"])
    return found


def tolerances(summary: RunSummary) -> tuple[float, float]:
    """(settle, in_flight): the largest any sensors instance reported."""
    settle, in_flight = 0.0, 0.0
    for report in summary.reports.values():
        checks = report.get("checks") if isinstance(report, dict) else None
        if isinstance(checks, dict) and "settle" in checks:
            settle = max(settle, float(checks["settle"]))
            in_flight = max(in_flight, float(checks.get("in_flight", 0.0)))
    return settle, in_flight


# -- the database ----------------------------------------------------------------------------------
def audit(conn: Connection, lives: dict[str, list[dict[str, Any]]], settle: float) -> Audit:
    """Compare the reported ``lives`` with the ``readings`` and ``alerts`` tables."""
    result = Audit(settle=settle, sensors=len(lives))
    labelled = _labelled(conn)
    for sensor_id, sensor_lives in sorted(lives.items()):
        last_life: tuple[float | None, list[Episode]] = (None, [])
        raised: list[Alert] = []
        for life in sorted(sensor_lives, key=lambda v: v["epoch"]):
            result.lives += 1
            _audit_storage(conn, sensor_id, life, result)
            last_ts, episodes, alerts = _audit_alerts(conn, sensor_id, life["epoch"], settle, result,
                                                      labelled.get(sensor_id, []))
            if last_ts is not None:
                last_life = (last_ts, episodes)
            raised += [a for a in alerts if a.state == "raised"]
        last_ts, episodes = last_life
        for alert in raised:
            if last_ts is not None and any(e.end + settle >= last_ts for e in episodes):
                result.uncleared_allowed.append(alert)
            else:
                result.uncleared.append(alert)
    return result


def _span(epoch: int) -> dict[str, int]:
    return {"lo": epoch * SEQ_SPAN + 1, "hi": (epoch + 1) * SEQ_SPAN}


def _audit_storage(conn: Connection, sensor_id: str, life: dict[str, Any], result: Audit) -> None:
    first, last, produced = int(life["first_seq"]), int(life["last_seq"]), int(life["produced"])
    args = {"s": sensor_id, "last": last, **_span(int(life["epoch"]))}
    rows, distinct, within = conn.execute(sa.text(
        "SELECT count(*), count(DISTINCT seq), coalesce(sum(CASE WHEN seq <= :last THEN 1 ELSE 0 END), 0) "
        "FROM readings WHERE sensor_id = :s AND seq BETWEEN :lo AND :hi"), args).one()
    result.produced += produced
    result.stored += int(within)
    result.duplicates += int(rows) - int(distinct)
    result.after_report += int(distinct) - int(within)
    if int(within) >= produced:
        return
    stored = {int(r[0]) for r in conn.execute(sa.text(
        "SELECT seq FROM readings WHERE sensor_id = :s AND seq BETWEEN :lo AND :last"), args)}
    recent_from = life.get("recent_from")
    recent = range(int(recent_from), last + 1) if recent_from is not None else range(0)
    missing = [seq for seq in range(first, last + 1) if seq not in stored]
    lost = [seq for seq in missing if seq not in recent]
    result.in_flight += len(missing) - len(lost)
    if lost:
        result.lost.setdefault(sensor_id, []).extend(lost)


def _labelled(conn: Connection) -> dict[str, list[tuple[int, Any, str]]]:
    """Every stored reading with an ``anomaly`` label, as ``(seq, ts, anomaly)`` per sensor in seq order: one
    scan of the table for the whole audit (no index has the label: a query per sensor and life walked the
    primary key's range and read every reading's row to test it, 777,600 rows a simulated day)."""
    found: dict[str, list[tuple[int, Any, str]]] = {}
    for sensor_id, seq, ts, anomaly in conn.execute(sa.text(
            "SELECT sensor_id, seq, ts, anomaly FROM readings WHERE anomaly IS NOT NULL")):
        found.setdefault(str(sensor_id), []).append((int(seq), ts, str(anomaly)))
    for rows in found.values():
        rows.sort(key=itemgetter(0))
    return found


def _audit_alerts(conn: Connection, sensor_id: str, epoch: int, settle: float, result: Audit,
                  labelled: list[tuple[int, Any, str]]) -> tuple[float | None, list[Episode], list[Alert]]:
    """``labelled``: the sensor's labelled readings (:func:`_labelled`), every life's."""
    args = {"s": sensor_id, **_span(epoch)}
    last = conn.execute(sa.text("SELECT ts FROM readings WHERE sensor_id = :s AND seq BETWEEN :lo AND :hi "
                                "ORDER BY seq DESC LIMIT 1"), args).first()
    last_ts = _seconds(last[0]) if last is not None else None
    episodes: list[Episode] = []
    lo, hi = args["lo"], args["hi"]
    for seq, ts, anomaly in labelled[bisect_left(labelled, lo, key=itemgetter(0)):
                                     bisect_right(labelled, hi, key=itemgetter(0))]:
        at = _seconds(ts)
        assert at is not None
        previous = episodes[-1] if episodes else None
        if previous is not None and previous.anomaly == anomaly and previous.last_seq == seq - 1:
            previous.last_seq, previous.end = int(seq), at
        else:
            episodes.append(Episode(sensor_id, epoch, str(anomaly), int(seq), int(seq), at, at))
    alerts = [Alert(str(a), sensor_id, str(rule), str(sev), str(state), int(seq), _seconds(ts))
              for a, rule, sev, state, seq, ts in conn.execute(sa.text(
                  "SELECT a.alert_id, a.rule, a.severity, a.state, a.reading_seq, r.ts FROM alerts a "
                  "LEFT JOIN readings r ON r.sensor_id = a.sensor_id AND r.seq = a.reading_seq "
                  "WHERE a.sensor_id = :s AND a.reading_seq BETWEEN :lo AND :hi ORDER BY a.reading_seq"), args)]
    result.episodes += episodes
    result.alerts += alerts
    for episode in episodes:
        if any(a.at is not None and episode.covers(a.at, settle) for a in alerts):
            result.alerted.append(episode)
        elif last_ts is None or episode.end + settle > last_ts:
            result.open_at_end.append(episode)
        else:
            result.missed.append(episode)
    result.unexplained += [a for a in alerts if a.at is None or not any(e.covers(a.at, settle) for e in episodes)]
    return last_ts, episodes, alerts


# -- the hook --------------------------------------------------------------------------------------
#: The runtime of the last one-process run that started in this process (forge_plant_started).
_last_runtime: weakref.ref[Runtime] | None = None


def remember(runtime: Runtime) -> None:
    global _last_runtime
    _last_runtime = weakref.ref(runtime)


def last_runtime() -> Runtime | None:
    return _last_runtime() if _last_runtime is not None else None


def plant_checks(summary: RunSummary, runtime: Runtime | None) -> list[Check]:
    """The four checks of the run, or [] when no sensors reported (a plant without them)."""
    lives = reported_lives(summary)
    if not lives:
        return []
    settle, _ = tolerances(summary)
    engine, manifest, dispose = _storage(summary, runtime)
    if engine is None:
        return [Check("sensor checks", False, "the plant's storage could not be found: no one-process runtime "
                                              "and no plant_dir in the sensors' reports")]
    processors = [c for c in manifest.components.values() if c.type == PROCESSOR]
    if not processors or not any(c.params.get("store", True) for c in processors):
        return [Check("sensor checks", True, f"not compared: the plant runs no {PROCESSOR} that stores readings")]
    try:
        with engine.connect() as conn:
            return audit(conn, lives, settle).checks()
    finally:
        if dispose:
            engine.dispose()


def _storage(summary: RunSummary, runtime: Runtime | None) -> tuple[Engine | None, Any, bool]:
    """(engine, manifest, whether to dispose the engine) of the run's plant.

    A one-process run: the runtime's own engine (still open while the plugins' checks run). The parent
    of a multi-process run has no runtime of its own that started: it loads the manifest again from the
    plant dir the sensors reported, with the same profile and environment, for its storage URL."""
    if runtime is not None and runtime.whole_plant and runtime.manifest.name == summary.plant:
        return runtime.storage(), runtime.manifest, False
    from forge_core.runtime import load_plant
    from forge_core.storage import create_engine_from_url

    dirs = {r.get("plant_dir") for r in summary.reports.values() if isinstance(r, dict) and r.get("plant_dir")}
    if len(dirs) != 1:
        return None, None, False
    _, manifest = load_plant(Path(str(dirs.pop())), profile=summary.profile)
    return create_engine_from_url(manifest.storage.url, plant_dir=manifest.plant_dir), manifest, True
