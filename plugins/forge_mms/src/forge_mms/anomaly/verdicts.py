"""What a rule says about one reading, and the shared judgment of a measure against levels with hysteresis."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, Protocol

from forge_mms.settings import RuleSettings

__all__ = ["RANK", "QuietRule", "Rule", "Severity", "Verdict", "Window", "judge_levels"]

Severity = Literal["warning", "critical"]
#: Severities in rising order; None (no condition) is below both.
RANK: dict[Severity | None, int] = {None: 0, "warning": 1, "critical": 2}


class Window(NamedTuple):
    """The readings a verdict looked at: first and last seq, and the time between them (>= 0). A tuple, as
    :class:`Verdict`: one of each per reading and rule, so their construction is kept cheap."""

    from_seq: int
    to_seq: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"from_seq": self.from_seq, "to_seq": self.to_seq, "seconds": round(max(self.seconds, 0.0), 6)}


class Verdict(NamedTuple):
    """A rule's judgment of a reading: the condition's severity now (None: no condition), what it measured,
    the level compared with, the window and the reason in words."""

    severity: Severity | None
    value: float
    threshold: float | None
    window: Window
    reason: str


class Rule(Protocol):
    """What a rule type's factory builds from its settings (one per ``rules:`` item).

    ``judge`` learns ``reading`` into ``state`` (the rule's own per-sensor state, from ``fresh``) and says
    what it sees; None: no verdict yet (a window not full), which leaves an alert as it is. It must update
    ``state`` the same way whatever ``held`` is (the severity of the sensor's active alert of this rule,
    which only moves the clearing level): a warm-up replays readings with ``held=None``. ``history``: how
    many past readings a warm-up replays to rebuild the state."""

    @property
    def settings(self) -> RuleSettings: ...

    @property
    def history(self) -> int: ...

    def fresh(self) -> Any: ...

    def judge(self, state: Any, reading: Any, held: Severity | None) -> Verdict | None: ...


class QuietRule(Rule, Protocol):
    """A rule with a quiet path (optional; the built-in rules have it): ``judge_quiet(state, reading)`` learns
    ``reading`` exactly as ``judge(state, reading, None)`` does and returns that verdict only when a condition
    holds (its severity not None); else None, without building the verdict or its reason. The engine takes it
    when the sensor holds no alert of the rule (what the tracker does then depends on the severity alone). A
    rule without ``judge_quiet`` is judged in full, as before."""

    def judge_quiet(self, state: Any, reading: Any) -> Verdict | None: ...


def judge_levels(measured: float, levels: Sequence[tuple[Severity, float]], *, above: bool, hysteresis: float,
                 held: Severity | None) -> tuple[Severity | None, float]:
    """The highest severity whose level ``measured`` is past (``above``: greater; else smaller), and that level
    (with none past: the lowest level, as judged).

    A level at or below the held severity is judged at its clearing level instead (``hysteresis`` inside),
    so an alert holds until the measure is back past it. ``levels`` in rising severity, at least one."""
    found: Severity | None = None
    found_level = lowest = math.nan
    for index, (severity, limit) in enumerate(levels):
        if RANK[held] >= RANK[severity]:
            limit = limit - hysteresis if above else limit + hysteresis
        if index == 0:
            lowest = limit
        if (measured > limit) if above else (measured < limit):
            found, found_level = severity, limit
    return found, (found_level if found is not None else lowest)
