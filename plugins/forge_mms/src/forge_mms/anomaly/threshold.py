"""``threshold``: the reading itself against a warning and a critical level (e.g. temperature > 80 °C warning,
> 100 °C critical). Clears ``hysteresis`` inside the level, after ``clear_after`` readings."""

from __future__ import annotations

from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import Severity, Verdict, Window, judge_levels
from forge_mms.settings import ThresholdRuleSettings

__all__ = ["ThresholdRule"]


class ThresholdRule:
    history = 0  # judges each reading alone

    def __init__(self, settings: ThresholdRuleSettings) -> None:
        self.settings = settings
        self.above = settings.direction == "above"
        levels: list[tuple[Severity, float | None]] = [("warning", settings.warning), ("critical", settings.critical)]
        self.levels: list[tuple[Severity, float]] = [(severity, limit) for severity, limit in levels
                                                     if limit is not None]
        # the quiet path's one comparison: a value past any level is past the least extreme one (the settings
        # take finite levels only, one at least)
        limits = [limit for _severity, limit in self.levels]
        self.quiet_level = min(limits) if self.above else max(limits)

    def fresh(self) -> Any:
        return None

    def judge(self, state: Any, reading: Reading, held: Severity | None) -> Verdict:
        verdict = self._judge(reading, held, False)
        assert verdict is not None
        return verdict

    def judge_quiet(self, state: Any, reading: Reading) -> Verdict | None:
        # nothing held: judge_levels moves no level (no hysteresis), so a condition holds only if the value is past
        # one of them as it stands, so past quiet_level; it is not (the common case): None, without judge_levels'
        # frame and without a loop over the levels
        value = reading.value
        if (value > self.quiet_level) if self.above else (value < self.quiet_level):
            return self._judge(reading, None, True)
        return None

    def _judge(self, reading: Reading, held: Severity | None, quiet: bool) -> Verdict | None:
        severity, level = judge_levels(reading.value, self.levels, above=self.above,
                                       hysteresis=self.settings.hysteresis, held=held)
        if quiet and severity is None:
            return None
        sign = ">" if self.above else "<"
        reason = (f"value {reading.value:g} {sign} {severity} level {level:g}" if severity is not None
                  else f"value {reading.value:g} within the levels")
        return Verdict(severity, reading.value, level,
                       Window(reading.seq, reading.seq, 0.0), reason)
