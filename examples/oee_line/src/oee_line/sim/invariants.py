"""The simulated OEE line's invariants, as pure functions of the ground truth, the bus and storage.

* :func:`samples_stored`: every sample the PLC published (machine, metric, ms, value) is stored
  (numeric metrics in ``telemetry``, the state in ``events``), across broker outages, PLC restarts and
  network losses (store-and-forward);
* :class:`BusOrder`: per node, the host's ``sparkplug.metrics`` come in seq order (a jump is a gap the
  host let through) and per machine and metric the DATA timestamps never go back (births, which repeat
  the current values, aside, and historical copies of samples already seen: the edge node replays DATA
  it could not prove the broker read, at least once);
* :func:`gaps_repaired`: each such gap is followed by a new NBIRTH of its node (the host's rebirth request
  answered) within ``within`` seconds;
* :func:`oee_matches`: OEE per machine and line computed from storage equals OEE from the simulator's
  ground truth over the same window (counts exact; times at the PLC's millisecond timestamps).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine

from forge_core import Check
from oee_line.components.oee import compute_window
from oee_line.oee import OeeFigures, ShiftWindow, combine, compute
from oee_line.settings import OeeParams
from oee_line.sim.plc import MachineTruth
from oee_line.storage.store import TimeSeriesStore
from oee_line.storage.tables import events, telemetry

__all__ = ["BusOrder", "Gap", "gaps_repaired", "oee_matches", "samples_stored", "truth_figures"]

Samples = Mapping[tuple[str, str, int], Any]
_MISSING = object()  # a sample not in storage (None is a value)


def _within(lost: list[tuple[str, str, int]], spans: Iterable[tuple[float, float]]) -> int:
    return sum(1 for _, _, ms in lost if any(lo <= ms / 1000 < hi for lo, hi in spans))


def samples_stored(engine: Engine, samples: Samples, horizon: float, *, state_metric: str = "State",
                   blind: Iterable[tuple[float, float]] = ()) -> Check:
    """Every sample before ``horizon`` is in storage with its value. ``blind``: spans in which the edge node
    wrote into a network that was gone (named in the detail, not excused)."""
    with engine.connect() as conn:  # the DBAPI cursor's plain tuples: a day's ~200,000 rows as Row objects cost twice
        cursor = conn.connection.cursor()
        try:
            cursor.execute(f"SELECT machine_id, metric, time, value FROM {telemetry.name}")
            rows = cursor.fetchall()
            cursor.execute(f"SELECT machine_id, event_type, ts_start FROM {events.name}")
            states = cursor.fetchall()
        finally:
            cursor.close()
    stored: dict[tuple[str, str, int], Any] = {(m, k, round(t * 1000)): v for m, k, t, v in rows}
    stored |= {(m, state_metric, round(t * 1000)): kind for m, kind, t in states}
    due = 0
    lost: list[tuple[str, str, int]] = []
    wrong: list[tuple[str, str, int]] = []
    for key, value in samples.items():  # one pass, one lookup a sample (a day's ~200,000)
        if not key[2] / 1000 < horizon:
            continue
        due += 1
        found = stored.get(key, _MISSING)
        if found is _MISSING:
            lost.append(key)
        elif found != value and not _same(found, value):
            wrong.append(key)
    lost.sort()
    wrong.sort()
    detail = f"{due - len(lost)} of {due} samples before the horizon stored"
    if lost:
        in_blind = _within(lost, blind)
        detail += (f"; {len(lost)} lost ({in_blind} written by the edge node into a network it had not yet noticed "
                   f"was gone), first {[_name(k) for k in lost[:5]]}")
    if wrong:
        detail += f"; {len(wrong)} stored with another value, first {[_name(k) for k in wrong[:5]]}"
    return Check("no sample lost across outages (store-and-forward)", not lost and not wrong, detail)


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(float(a) - float(b)) < 1e-9)


def _name(key: tuple[str, str, int]) -> str:
    return f"{key[0]}/{key[1]}@{key[2] / 1000:.3f}"


@dataclass
class Gap:
    node: str
    at: float
    expected: int
    got: int
    repaired_at: float | None = None


@dataclass
class BusOrder:
    """Follows the host's ``sparkplug.metrics`` on the bus (feed :meth:`see` each body in arrival order)."""

    last_seq: dict[str, int] = field(default_factory=dict)
    last_ts: dict[tuple[str, str], int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    backwards: list[str] = field(default_factory=list)
    #: (device, metric) -> the ms of its DATA seen (a set of ints a metric, no tuple kept a sample)
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    copies: int = 0  # historical copies of samples seen before
    births: int = 0
    messages: int = 0

    def see(self, body: Mapping[str, Any], now: float) -> None:
        self.messages += 1
        node = f"{body.get('group')}/{body.get('node')}"
        device, kind, seq = body.get("device"), body.get("kind"), body.get("seq")
        if kind == "birth" and device is None:  # NBIRTH: seq starts again at 0
            self.births += 1
            for gap in self.gaps:
                if gap.node == node and gap.repaired_at is None:
                    gap.repaired_at = now
        elif seq is not None and node in self.last_seq and seq != (self.last_seq[node] + 1) % 256:
            self.gaps.append(Gap(node, now, (self.last_seq[node] + 1) % 256, seq))
        if seq is not None:
            self.last_seq[node] = seq
        if kind != "data" or device is None:
            return
        seen, last_ts = self.seen, self.last_ts  # every DATA of the day comes here: one lookup of each a metric
        for metric in body.get("metrics", []):
            ts = metric.get("timestamp")
            if ts is None:
                continue
            key = (device, metric.get("name"))
            times = seen.get(key)
            if times is None:
                times = seen[key] = set()
            if ts not in times:
                times.add(ts)
            elif metric.get("historical"):
                self.copies += 1  # sent live, then replayed: the broker had read it, unproven to the node
                continue
            last = last_ts.get(key)
            if last is None or ts >= last:
                last_ts[key] = ts
            else:  # the newest stays the reference
                self.backwards.append(f"{device}/{key[1]} {last / 1000:.3f} -> {ts / 1000:.3f}")

    def check(self) -> Check:
        detail = (f"{self.messages} sparkplug.metrics, {self.births} NBIRTHs; {len(self.gaps)} seq gaps let through; "
                  f"{len(self.backwards)} DATA timestamps going back; {self.copies} historical copies of samples seen")
        if self.backwards:
            detail += f", first {self.backwards[:3]}"
        return Check("order kept per node (DATA timestamps never go back)", not self.backwards, detail)


def gaps_repaired(gaps: list[Gap], now: float, within: float) -> Check:
    """Each gap is followed by an NBIRTH of its node within ``within`` s (gaps younger than that are not due)."""
    due = [g for g in gaps if g.at + within <= now]
    late = [g for g in due if g.repaired_at is None or g.repaired_at - g.at > within]
    detail = f"{len(due)} seq gaps due, {len(due) - len(late)} followed by a rebirth within {within:g} s"
    if late:
        detail += f"; not repaired: {[(g.node, round(g.at, 3), g.expected, g.got) for g in late[:5]]}"
    return Check("seq gaps always repaired by rebirth", not late, detail)


def truth_figures(truth: MachineTruth, start: float, end: float) -> OeeFigures:
    """A machine's OEE over ``[start, end)`` from what it did (states and parts at ms), nothing stored."""
    run = 0.0
    spans = [*truth.states, (round(end * 1000), "")]
    for (t0, state), (t1, _) in pairwise(spans):
        lo, hi = max(t0 / 1000, start), min(t1 / 1000, end)
        if state == "running" and hi > lo:
            run += hi - lo
    parts = [good for ms, good in truth.parts if start <= ms / 1000 < end]
    planned = end - max(start, truth.states[0][0] / 1000)
    return compute(planned, run, truth.ideal_cycle_time, len(parts), sum(parts))


def oee_matches(engine: Engine, truth: Mapping[str, MachineTruth], params: OeeParams, start: float,
                end: float) -> Check:
    """OEE per machine and for the line over ``[start, end)``: storage against ground truth."""
    window = ShiftWindow("audit", int(start // 86_400), start, end)
    stored = compute_window(TimeSeriesStore(engine), params.model_copy(update={"machines": sorted(truth)}), window)
    expected = {m: truth_figures(t, start, end) for m, t in truth.items()}
    bad = []
    for machine, want in sorted(expected.items()):
        got = stored[machine].figures
        if (got.total, got.good) != (want.total, want.good) or abs(got.oee - want.oee) > 1e-6 or \
                abs(got.availability - want.availability) > 1e-6 or abs(got.planned_time - want.planned_time) > 1e-3:
            bad.append(f"{machine}: stored OEE {got.oee:.6f} (A {got.availability:.6f}, {got.good}/{got.total}) "
                       f"truth {want.oee:.6f} (A {want.availability:.6f}, {want.good}/{want.total})")
    line_got = combine(w.figures for w in stored.values())
    line_want = combine(expected.values())
    if abs(line_got.oee - line_want.oee) > 1e-6:
        bad.append(f"line: stored {line_got.oee:.6f}, truth {line_want.oee:.6f}")
    detail = (f"{end - start:.0f} s window; line OEE {line_got.oee:.4f} stored, {line_want.oee:.4f} truth; "
              + ", ".join(f"{m} {f.oee:.4f}" for m, f in sorted(expected.items())))
    if bad:
        detail += "; differ: " + "; ".join(bad)
    return Check("OEE from stored data equals OEE from the simulator's ground truth", not bad, detail)
