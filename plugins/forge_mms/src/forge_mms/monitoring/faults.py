"""The fault detector: UP / DEGRADED / DOWN per factory, from core's heartbeat status tactic.

Nothing here re-implements the state machine: it is :class:`forge_core.tactics.HeartbeatStatusMonitor`
(the ``tactics.heartbeat`` settings) with a :class:`forge_core.tactics.FixedTimeoutDetector` whose
timeout is the DOWN rule below. The rules, per factory:

* **DOWN** when ``missed_beats`` consecutive beats are missed or the gap since the last beat is over
  ``max_gap`` s, whichever comes first. Beat k after the last one is due at ``last + k x interval``
  and missed once that instant has *passed*, so ``missed(now) = ceil((now - last) / interval) - 1``
  and both rules are one timeout, ``min(max_gap, missed_beats x interval)``: silent for more than it
  is DOWN (2 missed beats at a 1 s interval are not DOWN, 3 are). Checked every ``check_every`` s,
  so the verdict comes at most ``timeout + check_every`` after the last beat.
* **DEGRADED** (from UP) on intermittent failures: a beat gap over ``degraded_after x interval``,
  or an error rate over ``error_rate_threshold`` among the beats of the last ``error_window`` s
  (beats observed failed: new errors or late; :meth:`BeatHistory.calculate_error_rate`), once 5
  beats are in the window. The rate counts the beats since the factory was last UP: a recovery
  starts a fresh window so a recovered factory does not flap back at once.
* **UP** again after ``recover_after`` consecutive healthy, on-time beats (the recovery manager's
  trigger); a discovered factory starts UP.
"""

from __future__ import annotations

import math
from typing import Any

from forge_core.tactics import FixedTimeoutDetector, HeartbeatStatusMonitor, Status, StatusChange

from forge_mms.monitoring.beats import Beat

__all__ = ["FaultDetector"]

_UP, _DOWN = Status.UP, Status.DOWN
#: next_verdict's instant past a rule's edge: far above a day's float rounding (~1e-11 s), far below a beat
_PAST_EDGE = 1e-6


class FaultDetector:
    """UP/DEGRADED/DOWN per factory; ``heartbeat`` is the ``tactics.heartbeat`` settings object."""

    def __init__(self, heartbeat: Any, *, max_gap: float, missed_beats: int) -> None:
        self.interval = float(heartbeat.interval)
        self.down_after = min(float(max_gap), missed_beats * self.interval)
        self.monitor = HeartbeatStatusMonitor(
            self.interval, detector=FixedTimeoutDetector(self.down_after), degraded_after=heartbeat.degraded_after,
            error_rate_threshold=heartbeat.error_rate_threshold, error_window=heartbeat.error_window,
            recover_after=heartbeat.recover_after)
        self.late_after = self.monitor.degraded_after * self.interval
        # The newest beat of every factory not DOWN: a silence verdict (DOWN after down_after, DEGRADED
        # after late_after) needs the oldest of them to be older than the shorter rule, so a check
        # before that instant skips the monitor's pass over every factory (4 checks a second).
        self._heard: dict[str, float] = {}
        #: an UP factory's first silence verdict comes this long after its newest beat: the soonest any beat
        #: heard from now on (a new factory's, a recovery's) can make a verdict fall
        self.up_rule = min(self.down_after, self.late_after)
        self._quiet = self.up_rule * (1 - 1e-9) - 1e-9  # below either rule's edge
        # statuses() as last built, and the monitor's version then (the monitor asks on most checks,
        # 4 a second per replica, and the statuses change a few times an hour)
        self._statuses: dict[str, Status] = {}
        self._statuses_version = -1

    def observe(self, beat: Beat) -> StatusChange | None:
        """Count ``beat``; returns the change it caused (discovery, DEGRADED, recovery to UP)."""
        # The tactic judges lateness itself (a late beat DEGRADES an UP factory, breaks a recovery
        # streak, but may start one after a silence); it is told about new errors, and about lateness
        # only while UP, so its error window holds exactly the beats calculate_error_rate calls failed.
        # _heard holds every factory the monitor tracks that is not DOWN (observe, evaluate and restore
        # keep it so): a factory's status is asked only for a late beat, not for every beat.
        factory = beat.factory
        monitor = self.monitor
        heard = self._heard
        last = heard.get(factory)
        if beat.late:
            before = monitor.status(factory)
            healthy = beat.new_errors <= 0 and before is not None and before is not _UP
        else:
            healthy = beat.new_errors <= 0
        at = beat.at
        change = monitor.observe(factory, at, healthy)
        if change is not None:
            if change.new is _DOWN:
                heard.pop(factory, None)
                return change
        elif last is None:  # tracked (no discovery) and not heard: still DOWN, not judged for silence
            return None
        if last is None or at > last:  # the monitor keeps the newest beat (an older one is a reordered beat)
            heard[factory] = at
        return change

    def _heard_from(self, factory: str, at: float) -> None:
        if self.monitor.status(factory) is Status.DOWN:
            self._heard.pop(factory, None)  # not judged for silence (evaluate skips it)
        else:  # the monitor keeps the newest beat (an older one is a reordered beat it ignores)
            self._heard[factory] = max(at, self._heard.get(factory, at))

    def restore(self, factory: str, status: str, at: float) -> None:
        """Track ``factory``, known before a restart (``factory_status``) but not heard since, as if
        it had beaten at ``at`` (the restart): silent on, it is judged by the same rules (DOWN one
        timeout later); a factory that was DOWN stays DOWN until it recovers. No change is returned:
        the PMS already holds the restored status."""
        if self.monitor.status(factory) is not None:
            return
        if status == Status.DOWN:
            self.monitor.report_dead(factory, at, "DOWN before the monitor restarted")
        else:
            self.monitor.observe(factory, at, True)
        self._heard_from(factory, at)

    def evaluate(self, now: float) -> list[StatusChange]:
        """Silence verdicts at ``now`` (DEGRADED after a long gap, DOWN after the timeout). Before the
        oldest newest beat of a factory not DOWN is older than the shorter rule, there can be none,
        and the monitor is not asked: the same verdicts, at a cost per change instead of per check."""
        heard = self._heard
        if not heard or now - min(heard.values()) <= self._quiet:
            return []
        changes = self.monitor.evaluate(now)
        for change in changes:
            if change.new is Status.DOWN:
                heard.pop(change.source, None)
        return changes

    def next_verdict(self, before: float = math.inf) -> float:
        """The earliest instant a silence verdict can fall (``math.inf``: no factory to judge): each
        tracked factory's newest beat plus its rule (the shorter one while UP, DOWN's once DEGRADED),
        just past the edge (silent for *more* than the rule). A later beat only moves it later.
        With ``before``: an instant no earlier than ``before`` stands for any at or after it (the check
        timer only asks whether one falls before its next check: most sleeps, no pass over the statuses)."""
        heard = self._heard
        if not heard:
            return math.inf
        status, up, down = self.monitor.status, self.up_rule, self.down_after
        soonest = min(heard.values()) + up + _PAST_EDGE  # no verdict before it: up_rule is the shorter rule
        if soonest >= before:
            return soonest
        return min(at + (up if status(factory) is _UP else down) for factory, at in heard.items()) + _PAST_EDGE

    def status(self, factory: str) -> Status | None:
        return self.monitor.status(factory)

    def statuses(self) -> dict[str, Status]:
        """Every factory's status (a dict shared between calls until a status changes: do not modify it)."""
        monitor = self.monitor
        if self._statuses_version != monitor.version:
            self._statuses = monitor.sources()
            self._statuses_version = monitor.version
        return self._statuses

    def missed_beats(self, last_beat: float, now: float) -> int:
        """Consecutive beats missed at ``now`` since a beat at ``last_beat`` (see the module docstring)."""
        silence = now - last_beat
        return max(0, math.ceil(silence / self.interval - 1e-9) - 1) if silence > 0 else 0
