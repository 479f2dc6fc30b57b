"""The rules of one processor applied per sensor: which rules judge a sensor, its state, warm-up.

A sensor's state holds, per rule that judges it, the rule's own state (its window, its baseline) and the
alert tracker (:mod:`.alerts`), plus the last seq judged. Readings must come in seq order; one at or
below the last seq was judged already (a redelivery) and is not judged again. After a (re)assignment the
state is rebuilt from storage: the sensor's last readings are replayed through the rules (no alert is
raised by a replay) and its active alerts are restored, so a sensor moving to another processor neither
raises an alert again nor forgets to clear it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from forge_mms.anomaly.alerts import ActiveAlert, AlertEvent, AlertTracker
from forge_mms.anomaly.readings import Reading
from forge_mms.anomaly.registry import build_rule
from forge_mms.anomaly.verdicts import Rule, Verdict
from forge_mms.settings import RuleSettings

__all__ = ["RuleBook", "SensorState"]


class SensorState:
    """One sensor's rule states and alert trackers."""

    __slots__ = ("entries", "kind", "last_seq", "quiet", "sensor_id")

    def __init__(self, sensor_id: str, kind: str, rules: Sequence[Rule]) -> None:
        self.sensor_id = sensor_id
        self.kind = kind
        self.last_seq = 0
        self.entries: list[tuple[Rule, Any, AlertTracker]] = [
            (rule, rule.fresh(), AlertTracker(rule.settings.name, rule.settings.type, rule.settings.clear_after))
            for rule in rules]
        # each rule's quiet path (QuietRule.judge_quiet), or None: a rule without one is judged in full
        self.quiet: list[Callable[[Any, Reading], Verdict | None] | None] = [
            getattr(rule, "judge_quiet", None) for rule in rules]

    def observe(self, reading: Reading) -> list[AlertEvent]:
        """Judge ``reading`` (the next in seq order) by every rule; the alerts raised and cleared."""
        events: list[AlertEvent] = []
        for (rule, state, tracker), quiet in zip(self.entries, self.quiet):
            active = tracker.active  # tracker.held, without the property's call
            if active is None and quiet is not None:
                # nothing held: only a condition moves the tracker; the quiet path builds no verdict without one
                verdict = quiet(state, reading)
                if verdict is not None:
                    events.extend(tracker.update(verdict, reading))
                continue
            verdict = rule.judge(state, reading, None if active is None else active.severity)
            # no alert and no condition: the tracker would change nothing (the common case, skipped)
            if verdict is not None and (active is not None or verdict.severity is not None):
                events.extend(tracker.update(verdict, reading))
        self.last_seq = reading.seq
        return events

    def replay(self, reading: Reading) -> None:
        """Learn ``reading`` (from storage) into the rules' states; no alert moves."""
        for rule, state, _tracker in self.entries:
            rule.judge(state, reading, None)
        self.last_seq = max(self.last_seq, reading.seq)

    def restore(self, active: Mapping[str, ActiveAlert]) -> None:
        """The active alert of each rule (by rule name), as storage has them."""
        for _rule, _state, tracker in self.entries:
            tracker.active = active.get(tracker.rule)
            tracker.calm = 0

    def active_alerts(self) -> dict[str, ActiveAlert]:
        return {tracker.rule: tracker.active for _r, _s, tracker in self.entries if tracker.active is not None}


class RuleBook:
    """The processor's rules (``rules:``), and which of them judge a sensor (kind, then ``sensors`` patterns)."""

    def __init__(self, settings: Iterable[RuleSettings]) -> None:
        self.rules: list[Rule] = [build_rule(s) for s in settings]
        self._chosen: dict[tuple[str, str], list[Rule]] = {}

    def for_sensor(self, sensor_id: str, kind: str) -> list[Rule]:
        key = (sensor_id, kind)
        chosen = self._chosen.get(key)
        if chosen is None:
            if len(self._chosen) > 100_000:  # sensors come and go; the choice is cheap to make again
                self._chosen.clear()
            chosen = self._chosen[key] = [
                rule for rule in self.rules
                if rule.settings.kind in (None, kind)
                and (rule.settings.sensors is None or any(fnmatchcase(sensor_id, p) for p in rule.settings.sensors))]
        return chosen

    def history(self, sensor_id: str, kind: str) -> int:
        """Past readings a warm-up of this sensor replays (what its rules' windows need)."""
        return max((rule.history for rule in self.for_sensor(sensor_id, kind)), default=0)

    def fresh(self, sensor_id: str, kind: str) -> SensorState:
        return SensorState(sensor_id, kind, self.for_sensor(sensor_id, kind))

    def warm(self, sensor_id: str, kind: str, history: Sequence[Reading], active: Mapping[str, ActiveAlert],
             last_seq: int) -> SensorState:
        """A sensor's state rebuilt from storage: ``history`` (oldest first) replayed, ``active`` restored."""
        state = self.fresh(sensor_id, kind)
        for reading in history:
            state.replay(reading)
        state.restore(active)
        state.last_seq = max(state.last_seq, last_seq)
        return state
