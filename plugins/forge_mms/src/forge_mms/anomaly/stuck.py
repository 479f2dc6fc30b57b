"""``stuck``: the last ``window`` readings (nearly) identical: max - min <= ``epsilon``. A stuck sensor keeps
its alert until the range is past ``epsilon + hysteresis``, ``clear_after`` readings in a row."""

from __future__ import annotations

from collections import deque
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window
from forge_mms.settings import StuckRuleSettings

__all__ = ["StuckRule"]


class _StuckState:
    __slots__ = ("readings", "values")

    def __init__(self, window: int) -> None:
        self.readings: deque[Reading] = deque(maxlen=window)
        self.values: deque[float] = deque(maxlen=window)  # the readings' values: max and min without a list


class StuckRule:
    def __init__(self, settings: StuckRuleSettings) -> None:
        self.settings = settings
        self.history = settings.window
        # what each reading reads, as plain attributes: a (pydantic) settings field costs ~370 instructions more
        self.window, self.level = settings.window, settings.epsilon
        self.held_level = settings.epsilon + settings.hysteresis  # a held alert clears past it

    def fresh(self) -> Any:
        return _StuckState(self.settings.window)

    def judge(self, state: _StuckState, reading: Reading, held: Severity | None) -> Verdict | None:
        return self.judge_quiet(state, reading, held, False)

    # the quiet path (QuietRule) with its defaults, nothing held; judge() is it with quiet=False: one call a
    # reading, not two (a def, not `judge_quiet = _judge`: an alias in a class body is no method compiled by mypyc)
    def judge_quiet(self, state: _StuckState, reading: Reading, held: Severity | None = None,
                    quiet: bool = True) -> Verdict | None:
        window, values, value = state.readings, state.values, reading.value
        window.append(reading)
        values.append(value)
        # judge_quiet (nothing held: the level is epsilon): the last two values alone already past it mean the
        # spread is (a float subtraction is monotonic: max - min >= |last - previous|): not stuck, no verdict,
        # full window or not, without max() and min() over all (the common case, tested first)
        if quiet and len(values) > 1 and abs(value - values[-2]) > self.level:
            return None
        if len(window) < self.window:
            return None
        level = self.held_level if held is not None else self.level
        spread = max(values) - min(values)
        stuck = spread <= level
        if quiet and not stuck:  # judge_quiet: no condition, nothing to build
            return None
        first = window[0]
        reason = (f"{len(window)} readings within {spread:.4g} (<= {level:g})" if stuck
                  else f"{len(window)} readings spread {spread:.4g}")
        return Verdict(self.settings.severity if stuck else None, spread, level, Window(first.seq, reading.seq,
                                                                           reading.ts - first.ts), reason)

