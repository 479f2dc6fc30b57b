"""``rms``: the root mean square of the last ``window`` readings above ``limit`` (vibration severity is
judged on the RMS of the velocity, ISO 10816 style). No verdict until the window is full."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window, judge_levels
from forge_mms.settings import RmsRuleSettings

__all__ = ["RmsRule"]


class _RmsState:
    __slots__ = ("readings", "squares")

    def __init__(self, window: int) -> None:
        self.readings: deque[Reading] = deque(maxlen=window)
        self.squares: deque[float] = deque(maxlen=window)  # each reading's value * value, squared once


class RmsRule:
    def __init__(self, settings: RmsRuleSettings) -> None:
        self.settings = settings
        self.history = settings.window
        # what each reading reads, as plain attributes: a (pydantic) settings field costs ~370 instructions more
        self.window = settings.window
        self.levels: list[tuple[Severity, float]] = [(settings.severity, settings.limit)]
        self.limit = settings.limit  # the one level, as the quiet path compares with it

    def fresh(self) -> Any:
        return _RmsState(self.settings.window)

    def judge(self, state: _RmsState, reading: Reading, held: Severity | None) -> Verdict | None:
        return self.judge_quiet(state, reading, held, False)

    # the quiet path (QuietRule) with its defaults, nothing held; judge() is it with quiet=False: one call a
    # reading, not two (a def, not `judge_quiet = _judge`: an alias in a class body is no method compiled by mypyc)
    def judge_quiet(self, state: _RmsState, reading: Reading, held: Severity | None = None,
                    quiet: bool = True) -> Verdict | None:
        window, squares = state.readings, state.squares
        window.append(reading)
        squares.append(reading.value * reading.value)
        if len(window) < self.window:
            return None
        # summed afresh each time: a running sum of squares drifts, and windows are small
        rms = math.sqrt(math.fsum(squares) / len(window))
        if quiet and not rms > self.limit:  # judge_quiet: not past the one level
            return None
        severity, level = judge_levels(rms, self.levels, above=True, hysteresis=self.settings.hysteresis, held=held)
        if quiet and severity is None:  # judge_quiet: no condition, nothing to build
            return None
        first = window[0]
        reason = (f"RMS {rms:.4g} over {len(window)} readings > {level:g}" if severity is not None
                  else f"RMS {rms:.4g} over {len(window)} readings")
        return Verdict(severity, rms, level,
                       Window(first.seq, reading.seq, reading.ts - first.ts), reason)

