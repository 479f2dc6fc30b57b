"""Per-source health status from heartbeats: UP -> DEGRADED -> DOWN -> (N healthy beats) -> UP.

The seed monitors each hand-rolled this; here it is one pure state machine. It never reads a
clock and never publishes: callers pass arrival times and ``now`` from the injected clock, and
publish the returned :class:`StatusChange` values (the integrator wires that component).

Rules, per source (discovered on its first beat):

* UP -> DEGRADED on intermittent trouble: a gap between beats longer than
  ``degraded_after * interval``, or an error rate above ``error_rate_threshold`` among the
  beats of the last ``error_window`` seconds (beats observed with ``healthy=False``).
* any -> DOWN when the failure detector gives up on the source (checked by :meth:`evaluate`),
  or on an external death report such as an MQTT Last Will (:meth:`report_dead`).
* DEGRADED/DOWN -> UP only after ``recover_after`` consecutive healthy, on-time beats, so a
  flapping machine does not bounce between states on every beat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from forge_core.tactics.detectors import FailureDetector, PhiAccrualDetector

__all__ = ["HeartbeatStatusMonitor", "SourceStatus", "Status", "StatusChange"]


class Status(StrEnum):
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"


_UP = Status.UP  # a global, not an enum class attribute looked up on every beat


@dataclass(frozen=True)
class StatusChange:
    """One transition. ``old`` is None when the source was just discovered."""

    source: str
    old: Status | None
    new: Status
    at: float
    reason: str


@dataclass
class SourceStatus:
    """What the monitor knows about one source."""

    status: Status
    last_beat: float
    since: float
    healthy_streak: int = 0
    dead_at: float | None = None
    window: deque[tuple[float, bool]] = field(default_factory=deque)
    #: unhealthy beats in ``window``, kept as beats enter and leave it (the error rate per beat
    #: without summing the window).
    errors: int = 0


class HeartbeatStatusMonitor:
    """Pure UP/DEGRADED/DOWN state machine over heartbeats from many sources.

    ``interval`` is the expected beat interval; ``detector`` defaults to a fresh
    :class:`PhiAccrualDetector` whose first estimate is that interval.
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        detector: FailureDetector | None = None,
        degraded_after: float = 1.5,
        error_rate_threshold: float = 0.2,
        error_window: float = 30.0,
        min_window_beats: int = 5,
        recover_after: int = 5,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"HeartbeatStatusMonitor: interval must be > 0 s, got {interval!r}")
        if degraded_after <= 1:
            raise ValueError(
                f"HeartbeatStatusMonitor: degraded_after must be > 1 (a multiple of the interval), "
                f"got {degraded_after!r}"
            )
        if not 0 <= error_rate_threshold < 1:
            raise ValueError(
                "HeartbeatStatusMonitor: error_rate_threshold must be in [0, 1), "
                f"got {error_rate_threshold!r}"
            )
        if recover_after < 1:
            raise ValueError(f"HeartbeatStatusMonitor: recover_after must be >= 1, got {recover_after!r}")
        self.interval = float(interval)
        self.detector = detector or PhiAccrualDetector(first_heartbeat_estimate=interval)
        self.degraded_after = float(degraded_after)
        self.error_rate_threshold = float(error_rate_threshold)
        self.error_window = float(error_window)
        self.min_window_beats = int(min_window_beats)
        self.recover_after = int(recover_after)
        self._late_after = self.degraded_after * self.interval  # a gap over this is a late beat
        self._sources: dict[str, SourceStatus] = {}
        #: Changes whenever a source's status does or a source is added or forgotten: the same
        #: version means :meth:`sources` would give the same statuses (a caller may keep them).
        self.version = 0

    # -- queries ---------------------------------------------------------------------------
    def status(self, source: str) -> Status | None:
        state = self._sources.get(source)
        return state.status if state else None

    def sources(self) -> dict[str, Status]:
        return {name: s.status for name, s in self._sources.items()}

    def error_rate(self, source: str) -> float:
        state = self._sources.get(source)
        if not state or not state.window:
            return 0.0
        return state.errors / len(state.window)

    # -- inputs ----------------------------------------------------------------------------
    def observe(self, source: str, at: float, healthy: bool = True) -> StatusChange | None:
        """Record a beat; returns the transition it caused, if any (discovery included)."""
        state = self._sources.get(source)
        if state is None:
            self.detector.heartbeat(source, at)
            self._sources[source] = SourceStatus(
                Status.UP, at, at, window=deque([(at, healthy)]), errors=0 if healthy else 1
            )
            self.version += 1
            return StatusChange(source, None, Status.UP, at, "discovered on first heartbeat")
        if state.dead_at is not None and at <= state.dead_at:
            return None  # a beat sent before the death report: late, not a sign of life
        if at < state.last_beat:
            return None  # reordered beat; the newer one already counted
        gap = at - state.last_beat
        late = gap > self._late_after
        self.detector.heartbeat(source, at)
        state.last_beat = at
        window = state.window
        window.append((at, healthy))
        if not healthy:
            state.errors += 1
        oldest = at - self.error_window  # the beats that left the error window
        while window and window[0][0] < oldest:
            if not window.popleft()[1]:
                state.errors -= 1

        if state.status is _UP:
            if late:
                return self._move(
                    state,
                    source,
                    Status.DEGRADED,
                    at,
                    f"beat gap {gap:.3f} s > {self.degraded_after} x {self.interval} s",
                )
            beats = len(window)
            if beats < self.min_window_beats or not state.errors:
                return None
            rate = state.errors / beats
            if rate > self.error_rate_threshold:
                return self._move(
                    state,
                    source,
                    Status.DEGRADED,
                    at,
                    f"error rate {rate:.0%} > {self.error_rate_threshold:.0%} "
                    f"over the last {self.error_window} s",
                )
            return None

        # DEGRADED or DOWN: count consecutive healthy, on-time beats (the gap before the first
        # beat of a streak does not count: it ends the silence that caused the state).
        if healthy and (not late or state.healthy_streak == 0):
            state.healthy_streak += 1
        else:
            state.healthy_streak = 0
        if state.healthy_streak >= self.recover_after:
            state.window.clear()  # start a fresh error window so recovery does not flap back
            state.errors = 0
            state.dead_at = None
            return self._move(
                state, source, Status.UP, at, f"{state.healthy_streak} consecutive healthy beats"
            )
        return None

    def report_dead(
        self, source: str, at: float, reason: str = "death report (last will)"
    ) -> StatusChange | None:
        """An external death certificate: the source is DOWN now, whatever the detector says."""
        state = self._sources.get(source)
        if state is None:
            state = SourceStatus(Status.DOWN, at, at)
            state.dead_at = at
            self._sources[source] = state
            self.version += 1
            return StatusChange(source, None, Status.DOWN, at, reason)
        state.dead_at = at
        self.detector.forget(source)  # a restarted source starts with a fresh history
        if state.status is Status.DOWN:
            state.healthy_streak = 0
            return None
        return self._move(state, source, Status.DOWN, at, reason)

    def evaluate(self, now: float) -> list[StatusChange]:
        """Check every source against the detector and the beat-gap rule at ``now``."""
        changes: list[StatusChange] = []
        for source, state in self._sources.items():
            if state.status is Status.DOWN:
                continue
            if not self.detector.is_available(source, now):
                changes.append(
                    self._move(
                        state,
                        source,
                        Status.DOWN,
                        now,
                        f"detector verdict: suspicion "
                        f"{self.detector.suspicion(source, now):.2f}, "
                        f"silent for {now - state.last_beat:.3f} s",
                    )
                )
            elif state.status is Status.UP and now - state.last_beat > self.degraded_after * self.interval:
                changes.append(
                    self._move(
                        state,
                        source,
                        Status.DEGRADED,
                        now,
                        f"no beat for {now - state.last_beat:.3f} s "
                        f"> {self.degraded_after} x {self.interval} s",
                    )
                )
        return changes

    def forget(self, source: str) -> None:
        """Stop tracking ``source`` (decommissioned); a later beat rediscovers it."""
        if self._sources.pop(source, None) is not None:
            self.version += 1
        self.detector.forget(source)

    # -- internals -------------------------------------------------------------------------
    def _move(self, state: SourceStatus, source: str, new: Status, at: float, reason: str) -> StatusChange:
        self.version += 1
        old = state.status
        state.status = new
        state.since = at
        state.healthy_streak = 0
        return StatusChange(source, old, new, at, reason)
