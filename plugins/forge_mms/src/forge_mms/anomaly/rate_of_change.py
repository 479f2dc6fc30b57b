"""``rate_of_change``: |value - earlier value| / (time - earlier time), per second, above ``limit``.

The earlier reading is the newest one at least ``min_dt`` seconds older (0: the previous reading). At a
high sampling rate the previous reading is milliseconds away and sensor noise divided by milliseconds is
a large "rate"; ``min_dt`` near the sensors' normal interval measures the change over a sensible time.
Readings are taken in seq order; one whose time does not advance (a sensor's new life may start with an
earlier clock) gives no verdict and starts afresh from it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window, judge_levels
from forge_mms.settings import RateOfChangeRuleSettings

__all__ = ["RateOfChangeRule"]


class _RateState:
    __slots__ = ("recent",)

    def __init__(self) -> None:
        self.recent: deque[Reading] = deque()  # the anchor (old enough), then the readings after it


class RateOfChangeRule:
    def __init__(self, settings: RateOfChangeRuleSettings) -> None:
        self.settings = settings
        # a warm-up replays enough readings to span min_dt at a few tens of readings a second
        self.history = 2 if settings.min_dt == 0 else 50
        # what each reading reads, as plain attributes: a (pydantic) settings field costs ~370 instructions more
        self.min_dt, self.direction = settings.min_dt, settings.direction
        self.levels: list[tuple[Severity, float]] = [(settings.severity, settings.limit)]
        self.limit = settings.limit  # the one level, as the quiet path compares with it

    def fresh(self) -> Any:
        return _RateState()

    def judge(self, state: _RateState, reading: Reading, held: Severity | None) -> Verdict | None:
        return self.judge_quiet(state, reading, held, False)

    # the quiet path (QuietRule) with its defaults, nothing held; judge() is it with quiet=False: one call a
    # reading, not two (a def, not `judge_quiet = _judge`: an alias in a class body is no method compiled by mypyc)
    def judge_quiet(self, state: _RateState, reading: Reading, held: Severity | None = None,
                    quiet: bool = True) -> Verdict | None:
        recent, min_dt = state.recent, self.min_dt
        if recent and reading.ts <= recent[-1].ts:
            recent.clear()
        while len(recent) >= 2 and reading.ts - recent[1].ts >= min_dt:
            recent.popleft()  # the next one is old enough: the oldest is no longer needed
        anchor = recent[0] if recent and reading.ts - recent[0].ts >= min_dt else None
        recent.append(reading)
        if anchor is None:
            return None
        dt = reading.ts - anchor.ts
        rate = (reading.value - anchor.value) / dt
        direction = self.direction
        measured = abs(rate) if direction == "both" else rate if direction == "rising" else -rate
        if quiet and not measured > self.limit:  # judge_quiet: not past the one level
            return None
        severity, level = judge_levels(measured, self.levels, above=True, hysteresis=self.settings.hysteresis,
                                       held=held)
        if quiet and severity is None:  # judge_quiet: no condition, nothing to build
            return None
        reason = (f"changing {rate:+.4g}/s > {level:g}/s" if severity is not None else f"changing {rate:+.4g}/s")
        return Verdict(severity, rate, level, Window(anchor.seq, reading.seq, dt), reason)

