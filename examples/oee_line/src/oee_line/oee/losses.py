"""A machine's OEE and six big losses over a window, from its state changes and counter samples.

Inputs are what the plant stores: the machine's state changes (``running|idle|down|setup`` with the
fault code, at the PLC's source timestamp) and samples of its cumulative ``good``/``total``
counters. The mapping to the six big losses (docs/examples/oee_line.md, "Six big losses"):

=====================  ====================================================================
breakdowns             ``down`` or ``idle`` stops lasting >= ``small_stop_threshold`` (availability)
setup_adjustments      ``setup`` time, whatever its length (availability)
small_stops            ``down`` or ``idle`` stops shorter than ``small_stop_threshold`` (performance)
reduced_speed          run time - ideal cycle x total (performance)
startup_rejects        ideal cycle x bad parts made within ``startup_window`` of running again
                       after ``setup``, ``down`` or a counter reset (PLC restart) (quality)
production_rejects     ideal cycle x the other bad parts (quality)
=====================  ====================================================================

Small stops are availability time in the ISO 22400 arithmetic (the machine did not run), but the
six-big-losses view books them under performance, as Nakajima does; A x P x Q is unchanged.
Planned production time is the window minus planned stops minus time with no state known yet
(``no_data_time``, reported so a gap in the data never reads as a good or bad machine), and
planned = productive + the six losses, to the float.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Sequence
from dataclasses import dataclass

from oee_line.oee.figures import OeeFigures, compute

__all__ = ["CounterDeltas", "CounterEvent", "CounterSample", "LossSettings", "MachineWindow", "SixBigLosses",
           "StateChange", "counter_deltas", "machine_window"]

STOP_STATES = frozenset({"down", "idle"})
STATES = frozenset({"running", "idle", "down", "setup"})


@dataclass(frozen=True)
class StateChange:
    ts: float
    state: str
    fault_code: int = 0


@dataclass(frozen=True)
class CounterSample:
    """Cumulative counters as read at ``ts`` (a drop means the PLC restarted its counters from 0)."""

    ts: float
    good: int
    total: int


@dataclass(frozen=True)
class CounterEvent:
    """A counter sample that matters beyond the sums: a reset (``d_total``/``d_good`` then count from 0) or
    one with bad parts (``d_total > d_good``)."""

    ts: float
    d_total: int
    d_good: int
    reset: bool


@dataclass(frozen=True)
class CounterDeltas:
    """What :func:`machine_window` needs of a window's counters: the parts made inside ``[start, end)`` and,
    in time order, the resets and the samples with bad parts. A day of 1 s samples is 172,800 rows but a few
    hundred such events, so the database can reduce the rows to this (``TimeSeriesStore.window_inputs``)
    instead of shipping every sample to Python."""

    total: int
    good: int
    events: tuple[CounterEvent, ...]


def counter_deltas(counters: Sequence[CounterSample], start: float, end: float) -> CounterDeltas:
    """The increments of cumulative ``counters`` (any order; the first sample is the baseline)."""
    good = total = 0
    found: list[CounterEvent] = []
    last: CounterSample | None = None
    for sample in sorted(counters, key=lambda c: c.ts):
        if last is None:
            last = sample
            continue
        reset = sample.total < last.total or sample.good < last.good
        d_total = sample.total if reset else sample.total - last.total
        d_good = sample.good if reset else sample.good - last.good
        last = sample
        inside = start <= sample.ts < end
        if inside:
            total += d_total
            good += d_good
        if reset or (inside and d_total != d_good):
            found.append(CounterEvent(sample.ts, d_total, d_good, reset))
    return CounterDeltas(total, good, tuple(found))


@dataclass(frozen=True)
class LossSettings:
    small_stop_threshold: float = 300.0
    startup_window: float = 300.0


@dataclass(frozen=True)
class SixBigLosses:
    """Seconds lost to each; reject counts beside their time."""

    breakdowns: float = 0.0
    setup_adjustments: float = 0.0
    small_stops: float = 0.0
    reduced_speed: float = 0.0
    startup_rejects: float = 0.0
    production_rejects: float = 0.0
    startup_reject_count: int = 0
    production_reject_count: int = 0

    def total(self) -> float:
        return (self.breakdowns + self.setup_adjustments + self.small_stops + self.reduced_speed
                + self.startup_rejects + self.production_rejects)

    def as_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class MachineWindow:
    figures: OeeFigures
    losses: SixBigLosses
    no_data_time: float
    planned_stop_time: float


def _clip(a: float, b: float, spans: Sequence[tuple[float, float]]) -> float:
    """Length of [a, b) inside the union of disjoint ``spans``."""
    return sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in spans)


def _planned_spans(start: float, end: float, planned_stops: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    spans, at = [], start
    for lo, hi in sorted(planned_stops):
        if hi <= at or lo >= end:
            continue
        if lo > at:
            spans.append((at, lo))
        at = max(at, hi)
    if at < end:
        spans.append((at, end))
    return spans


def _after_restart(restarts: list[float], ts: float, window: float) -> bool:
    """Whether ``r <= ts < r + window`` for some ``r`` of ``restarts`` (sorted). Only the newest restart at or
    before ``ts`` needs a look (``r + window`` never falls as ``r`` grows): a bisection, where ``any`` over
    every restart cost a shift's OEE its bad parts x its restarts (the OEE line's simulated day)."""
    i = bisect_right(restarts, ts)
    return i > 0 and ts < restarts[i - 1] + window


def machine_window(states: Sequence[StateChange], counters: Sequence[CounterSample] | CounterDeltas,
                   ideal_cycle_time: float,
                   start: float, end: float, *, planned_stops: Sequence[tuple[float, float]] = (),
                   settings: LossSettings | None = None, machine: str = "?") -> MachineWindow:
    """OEE and six big losses of one machine over ``[start, end)``; inputs in any order (``counters`` as
    samples, or already reduced to :class:`CounterDeltas`)."""
    settings = settings or LossSettings()
    if end < start:
        raise ValueError(f"OEE machine {machine!r}: window end {end} is before its start {start}")
    spans = _planned_spans(start, end, planned_stops)
    ordered = sorted(states, key=lambda s: s.ts)
    for change in ordered:
        if change.state not in STATES:
            raise ValueError(f"OEE machine {machine!r}: unknown state {change.state!r} at {change.ts} "
                             f"(expected one of {sorted(STATES)})")
    seconds = dict.fromkeys(STATES, 0.0)
    breakdowns = small = 0.0
    restarts: list[float] = []  # when running resumed after setup/down (kept sorted: _after_restart bisects it)
    covered = 0.0
    previous: str | None = None
    # merge repeated samples of one state, so a stop's length is the whole stop, across window edges
    merged: list[StateChange] = [c for i, c in enumerate(ordered) if i == 0 or c.state != ordered[i - 1].state]
    for i, change in enumerate(merged):
        seg_end = merged[i + 1].ts if i + 1 < len(merged) else max(end, change.ts)
        inside = _clip(change.ts, seg_end, spans)
        covered += inside
        seconds[change.state] += inside
        if change.state in STOP_STATES:
            if seg_end - change.ts >= settings.small_stop_threshold:
                breakdowns += inside
            else:
                small += inside
        if change.state == "running" and previous in ("setup", "down"):
            restarts.append(change.ts)
        previous = change.state
    planned = sum(hi - lo for lo, hi in spans)
    no_data = planned - covered
    deltas = counters if isinstance(counters, CounterDeltas) else counter_deltas(counters, start, end)
    start_bad = prod_bad = 0
    for event in deltas.events:  # in time order: a reset's restart applies to it and what follows
        if event.reset:
            insort(restarts, event.ts - (event.d_total * ideal_cycle_time))  # parts since the restart: startup
        bad = event.d_total - event.d_good  # < 0 only between a part's GoodCount and its TotalCount (below)
        if bad <= 0 or not start <= event.ts < end:
            continue
        if _after_restart(restarts, event.ts, settings.startup_window):
            start_bad += bad
        else:
            prod_bad += bad
    # GoodCount and TotalCount are separate samples, often separate messages: a window read between a part's
    # GoodCount and its TotalCount sees more good parts than parts; such a part counts once its total is stored
    total, good = deltas.total, min(deltas.good, deltas.total)
    run = seconds["running"]
    figures = compute(planned - no_data, run, ideal_cycle_time, total, good)
    losses = SixBigLosses(breakdowns=breakdowns, setup_adjustments=seconds["setup"], small_stops=small,
                          reduced_speed=run - figures.net_run_time, startup_rejects=ideal_cycle_time * start_bad,
                          production_rejects=ideal_cycle_time * prod_bad, startup_reject_count=start_bad,
                          production_reject_count=prod_bad)
    return MachineWindow(figures, losses, no_data, (end - start) - planned)
