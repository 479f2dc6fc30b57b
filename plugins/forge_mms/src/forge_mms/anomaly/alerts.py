"""The alert state machine of one (sensor, rule): raise once, escalate, clear with hysteresis.

At most one alert of a rule is active on a sensor. A verdict at a higher severity than the active alert's
(or any, with none active) raises a new alert at once (and clears the lower one); verdicts below it must
come ``clear_after`` times in a row before it clears (or drops to warning: clear, raise a warning), the
rule's hysteresis having moved the clearing level. A verdict at the same severity keeps it (de-duplication:
no second raise while the condition holds) and resets the count; no verdict (a window not full) changes
nothing. The alert id is ``<sensor_id>:<rule>:<seq of the raising reading>``: deterministic, so a redelivered
reading that raises again gives the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.verdicts import RANK, Severity, Verdict

__all__ = ["ActiveAlert", "AlertEvent", "AlertTracker", "alert_id"]


def alert_id(sensor_id: str, rule: str, seq: int) -> str:
    return f"{sensor_id}:{rule}:{seq}"


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    alert_id: str
    severity: Severity
    raised_seq: int


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert raised or cleared at ``reading``: what is published (:meth:`payload`) and stored."""

    alert_id: str
    state: str  # "raised" | "cleared"
    severity: Severity
    rule: str
    type: str
    raised_seq: int
    reading: Reading
    verdict: Verdict

    def payload(self) -> dict[str, Any]:
        r, v = self.reading, self.verdict
        return {"alert_id": self.alert_id, "sensor_id": r.sensor_id, "kind": r.kind, "rule": self.rule,
                "type": self.type, "severity": self.severity, "state": self.state, "value": v.value,
                "threshold": v.threshold, "window": v.window.as_dict(), "reading_seq": r.seq,
                "raised_seq": self.raised_seq, "timestamp": r.timestamp, "location": r.location,
                "reason": v.reason}


class AlertTracker:
    """One (sensor, rule): the active alert and the readings in a row that said it is over."""

    __slots__ = ("active", "calm", "clear_after", "rule", "type")

    def __init__(self, rule: str, type_: str, clear_after: int, active: ActiveAlert | None = None) -> None:
        self.rule = rule
        self.type = type_
        self.clear_after = clear_after
        self.active = active
        self.calm = 0

    @property
    def held(self) -> Severity | None:
        return self.active.severity if self.active is not None else None

    def update(self, verdict: Verdict | None, reading: Reading) -> list[AlertEvent]:
        if verdict is None:
            return []
        active, now = self.active, verdict.severity
        if active is None:
            return [self._raise(now, verdict, reading)] if now is not None else []
        if RANK[now] > RANK[active.severity]:  # escalation: at once
            assert now is not None
            return [self._clear(verdict, reading), self._raise(now, verdict, reading)]
        if now == active.severity:
            self.calm = 0
            return []
        self.calm += 1
        if self.calm < self.clear_after:
            return []
        events = [self._clear(verdict, reading)]
        if now is not None:  # critical back to warning: the warning is a new alert
            events.append(self._raise(now, verdict, reading))
        return events

    def _raise(self, severity: Severity, verdict: Verdict, reading: Reading) -> AlertEvent:
        self.active = ActiveAlert(alert_id(reading.sensor_id, self.rule, reading.seq), severity, reading.seq)
        self.calm = 0
        return AlertEvent(self.active.alert_id, "raised", severity, self.rule, self.type, reading.seq, reading,
                          verdict)

    def _clear(self, verdict: Verdict, reading: Reading) -> AlertEvent:
        active = self.active
        assert active is not None
        self.active = None
        self.calm = 0
        return AlertEvent(active.alert_id, "cleared", active.severity, self.rule, self.type, active.raised_seq,
                          reading, verdict)
