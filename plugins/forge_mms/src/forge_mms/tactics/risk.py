"""Tactic kind ``risk``: how likely a factory is to fail soon, from its recent beats.

The strategy is replaceable the way every tactic is: forge_mms registers the kind ``risk`` and its
rule-based implementation ``risk.rules``; a plant (or plugin) registers ``risk.<name>`` with a
factory ``(settings, services) -> RiskStrategy`` in ``forge_register_tactics`` and picks it with
``tactics: {risk: {use: <name>}}``. ``mms.factory_monitor`` builds it through ``ctx.tactics.get("risk")``
and calls :meth:`RiskStrategy.assess` on every check with the beats of the last ``window`` s.

The rules (``risk.rules``), over the beats of the window:

* **HIGH** when the error rate (failed beats / beats, see ``forge_mms.monitoring.beats``) is above
  ``high_error_rate`` (0.1);
* **MEDIUM** when the latency rises: the ordinary least-squares slope of the latency signal (ms)
  against arrival time (s), over at least ``min_samples`` beats carrying it, is above
  ``latency_slope`` ms/s (1.0 ms/s = a latency 300 ms higher at the end of a 5-minute window). The
  signal is ``latencyMs`` when the beat reports it, else the transit time (arrival - the beat's
  ``timestamp``: a constant clock offset between factory and monitor does not change a slope), or
  by setting the gap to the previous beat;
* **LOW** otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple, Protocol

from forge_core.tactics import Status
from mypy_extensions import mypyc_attr

from forge_mms.monitoring.beats import Beat, BeatWindow, error_rate
from forge_mms.settings import RiskRulesSettings

__all__ = ["Risk", "RiskAssessment", "RiskStrategy", "RuleBasedRisk", "least_squares_slope", "make_rules",
           "should_preemptively_rebalance"]


class Risk(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class RiskAssessment(NamedTuple):
    """A strategy's verdict on one factory (immutable; a named tuple: the monitor asks for one per
    factory after each beat, and a frozen dataclass's ``__init__`` cost ~3x a tuple's)."""

    risk: Risk
    error_rate: float
    latency_slope: float | None  # ms per s; None: too few samples
    reason: str


class RiskStrategy(Protocol):
    """What ``risk.<name>`` builds. ``beats``: the factory's beats of the last ``window`` s, oldest first
    (from the monitor, a :class:`~forge_mms.monitoring.beats.BeatWindow`: valid during the call,
    ``list()`` it to keep it; it also carries the window's error rate and least-squares fits)."""

    def assess(self, factory: str, beats: Sequence[Beat], now: float) -> RiskAssessment: ...


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The ordinary least-squares slope of ``ys`` over ``xs``; None for fewer than 2 points or equal ``xs``."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx <= 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx


@mypyc_attr(allow_interpreted_subclasses=True)  # a strategy a plant may subclass (this module may be compiled)
class RuleBasedRisk:
    """``risk.rules``: HIGH on errors, MEDIUM on a rising latency, else LOW (module docstring)."""

    def __init__(self, settings: RiskRulesSettings) -> None:
        self.settings = settings
        # one function for the settings' signal (the window's fits are keyed by it and call it as each
        # beat enters and leaves, two calls a beat per replica): signal()'s branch for `latency`, taken once
        self._signal = _SIGNALS[settings.latency]

    def signal(self, beat: Beat) -> float | None:
        """The beat's latency signal, ms (None: the beat does not carry it)."""
        how = self.settings.latency
        if how in ("auto", "reported") and beat.latency_ms is not None:
            return beat.latency_ms
        if how in ("auto", "transit"):
            return (beat.at - beat.timestamp) * 1000.0
        if how == "inter_arrival" and beat.gap is not None:
            return beat.gap * 1000.0
        return None

    def assess(self, factory: str, beats: Sequence[Beat], now: float) -> RiskAssessment:
        s = self.settings
        # The monitor's window: its counts and sums are kept up to date. Not isinstance: BeatWindow derives from
        # an ABC (Sequence), and compiled by mypyc it shares Sequence's isinstance cache (docs/compiled.md).
        if type(beats) is BeatWindow:
            rate = beats.error_rate
            samples, slope = beats.fit(self._signal)
        else:
            rate = error_rate(beats)
            points = [(b.at, y) for b in beats if (y := self.signal(b)) is not None]
            samples = len(points)
            slope = least_squares_slope([x for x, _ in points], [y for _, y in points])
        if samples < s.min_samples:
            slope = None
        if rate > s.high_error_rate:
            return _new_assessment((Risk.HIGH, rate, slope,
                                    f"error rate {rate:.3f} > {s.high_error_rate} over {len(beats)} beats"))
        if slope is not None and slope > s.latency_slope:
            return _new_assessment((Risk.MEDIUM, rate, slope,
                                    f"latency rising {slope:.2f} ms/s > {s.latency_slope} over {samples} beats"))
        return _new_assessment((Risk.LOW, rate, slope, "no error or latency trend"))


#: RiskAssessment(*values) without the named tuple's ``__new__``, a Python function (a frame per factory per check)
_new_assessment: Callable[[tuple[Any, ...]], RiskAssessment] = partial(tuple.__new__, RiskAssessment)


def _auto(beat: Beat) -> float | None:
    latency = beat.latency_ms
    return latency if latency is not None else (beat.at - beat.timestamp) * 1000.0


def _reported(beat: Beat) -> float | None:
    return beat.latency_ms


def _transit(beat: Beat) -> float | None:
    return (beat.at - beat.timestamp) * 1000.0


def _inter_arrival(beat: Beat) -> float | None:
    return beat.gap * 1000.0 if beat.gap is not None else None


#: RuleBasedRisk.signal for each ``latency`` setting, as one function each
_SIGNALS: dict[str, Callable[[Beat], float | None]] = {
    "auto": _auto, "reported": _reported, "transit": _transit, "inter_arrival": _inter_arrival}


def make_rules(settings: RiskRulesSettings, services: Any) -> RuleBasedRisk:
    """The ``risk.rules`` factory."""
    return RuleBasedRisk(settings)


def should_preemptively_rebalance(factory: str, risks: Mapping[str, Risk], statuses: Mapping[str, Status],
                                  free_elsewhere: int | None = None) -> bool:
    """HIGH risk while UP, and capacity elsewhere could take its not-yet-started orders.

    ``free_elsewhere``: the free capacity the PMS reports on the other factories UP there and below HIGH
    risk (the failover manager's capacity query): the drain needs some (> 0); the PMS moves what fits
    (contract: DEGRADED drains not-yet-started orders where there is capacity). None (no answer: the
    query failed) falls back to a stand-in: another factory UP below HIGH risk at the MMS."""
    if risks.get(factory) is not Risk.HIGH or statuses.get(factory) is not Status.UP:
        return False
    if free_elsewhere is not None:
        return free_elsewhere > 0
    return any(other != factory and status is Status.UP and risks.get(other, Risk.LOW) is not Risk.HIGH
               for other, status in statuses.items())
