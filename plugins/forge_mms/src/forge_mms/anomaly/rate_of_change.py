"""``rate_of_change``: |value - previous value| / (time - previous time), per second, above ``limit``.

Consecutive readings by seq; a pair whose time does not advance (a sensor's new life may start with an
earlier clock) gives no verdict and starts afresh from the reading."""

from __future__ import annotations

from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window, judge_levels
from forge_mms.settings import RateOfChangeRuleSettings

__all__ = ["RateOfChangeRule"]


class _RateState:
    __slots__ = ("previous",)

    def __init__(self) -> None:
        self.previous: Reading | None = None


class RateOfChangeRule:
    history = 2

    def __init__(self, settings: RateOfChangeRuleSettings) -> None:
        self.settings = settings
        self.levels: list[tuple[Severity, float]] = [(settings.severity, settings.limit)]

    def fresh(self) -> Any:
        return _RateState()

    def judge(self, state: _RateState, reading: Reading, held: Severity | None) -> Verdict | None:
        previous, state.previous = state.previous, reading
        if previous is None:
            return None
        dt = reading.ts - previous.ts
        if dt <= 0:
            return None
        rate = (reading.value - previous.value) / dt
        direction = self.settings.direction
        measured = abs(rate) if direction == "both" else rate if direction == "rising" else -rate
        severity, level = judge_levels(measured, self.levels, above=True, hysteresis=self.settings.hysteresis,
                                       held=held)
        reason = (f"changing {rate:+.4g}/s > {level:g}/s" if severity is not None else f"changing {rate:+.4g}/s")
        return Verdict(severity, rate, level,
                       Window(previous.seq, reading.seq, dt), reason)
