"""Failure detectors: turn a stream of heartbeats into a verdict "this source is gone".

Two reference detectors share one small protocol, so a monitor can swap them by name:

* :class:`FixedTimeoutDetector` -- what the seed systems hand-rolled: DOWN after ``timeout``
  seconds of silence. Simple and predictable, but one timeout has to fit every interval.
* :class:`PhiAccrualDetector` -- Hayashibara et al.'s phi accrual detector as Akka implements it.
  It learns each source's inter-arrival distribution and answers with a suspicion level
  ``phi = -log10(P(a beat this late))``, so one threshold fits sources beating every 100 ms and
  every 5 s alike.

Detectors take times as arguments (``at``/``now``) and never read a clock themselves; the caller
passes readings from the injected :class:`~forge_core.clock.Clock`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "FailureDetector",
    "FixedTimeoutDetector",
    "PhiAccrualDetector",
    "expected_detection_time",
]


@runtime_checkable
class FailureDetector(Protocol):
    """Decides from heartbeat arrival times whether a source is still alive."""

    def heartbeat(self, source: str, at: float) -> None:
        """Record a heartbeat from ``source`` that arrived at ``at`` (seconds)."""

    def is_available(self, source: str, now: float) -> bool:
        """False once the detector suspects ``source`` is dead. Unknown sources are available."""

    def suspicion(self, source: str, now: float) -> float:
        """How strongly ``source`` is suspected at ``now`` (detector-specific scale, 0 = not)."""

    def forget(self, source: str) -> None:
        """Drop everything known about ``source`` (it left, or restarts with a fresh history)."""


class FixedTimeoutDetector:
    """DOWN after ``timeout`` seconds without a beat; ``suspicion`` is silence / timeout."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"FixedTimeoutDetector: timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = float(timeout)
        self._last: dict[str, float] = {}

    def heartbeat(self, source: str, at: float) -> None:
        prev = self._last.get(source)
        if prev is None or at > prev:
            self._last[source] = at

    def suspicion(self, source: str, now: float) -> float:
        last = self._last.get(source)
        if last is None:
            return 0.0
        return max(0.0, now - last) / self.timeout

    def is_available(self, source: str, now: float) -> bool:
        return self.suspicion(source, now) <= 1.0

    def forget(self, source: str) -> None:
        self._last.pop(source, None)

    def last_heartbeat(self, source: str) -> float | None:
        return self._last.get(source)

    def __repr__(self) -> str:
        return f"FixedTimeoutDetector(timeout={self.timeout})"


@dataclass
class _History:
    """Bounded window of inter-arrival intervals with running sums (Akka's HeartbeatHistory)."""

    max_size: int
    intervals: deque[float] = field(default_factory=deque)
    total: float = 0.0
    squares: float = 0.0

    def add(self, interval: float) -> None:
        if len(self.intervals) >= self.max_size:
            old = self.intervals.popleft()
            self.total -= old
            self.squares -= old * old
        self.intervals.append(interval)
        self.total += interval
        self.squares += interval * interval

    @property
    def mean(self) -> float:
        return self.total / len(self.intervals)

    @property
    def std_deviation(self) -> float:
        mean = self.mean
        return math.sqrt(max(0.0, self.squares / len(self.intervals) - mean * mean))


@dataclass
class _PhiState:
    history: _History
    last: float


class PhiAccrualDetector:
    """Phi accrual failure detector, following Akka's ``PhiAccrualFailureDetector``.

    ``phi`` uses the normal distribution of the learned intervals via Akka's logistic
    approximation of its CDF; ``acceptable_heartbeat_pause`` is added to the mean (tolerated GC
    or network pauses) and ``min_std_deviation`` keeps very regular sources from being declared
    dead on the first small delay. The first beat seeds the history with
    ``first_heartbeat_estimate`` +/- a quarter of it, as Akka does; an interval that ends a
    period the detector already judged unavailable is not learned (it would skew the stats).

    With the defaults a 1 s source with 10 % jitter is declared DOWN about 1.5 s after its last
    beat; see ``docs/tactics/detectors.md`` for measured figures.
    """

    def __init__(
        self,
        threshold: float = 8.0,
        min_std_deviation: float = 0.1,
        acceptable_heartbeat_pause: float = 0.0,
        max_sample_size: int = 200,
        first_heartbeat_estimate: float = 1.0,
    ) -> None:
        problems = []
        if threshold <= 0:
            problems.append(f"threshold must be > 0, got {threshold!r}")
        if min_std_deviation <= 0:
            problems.append(f"min_std_deviation must be > 0 seconds, got {min_std_deviation!r}")
        if acceptable_heartbeat_pause < 0:
            problems.append(f"acceptable_heartbeat_pause must be >= 0 s, got {acceptable_heartbeat_pause!r}")
        if max_sample_size < 1:
            problems.append(f"max_sample_size must be >= 1, got {max_sample_size!r}")
        if first_heartbeat_estimate <= 0:
            problems.append(f"first_heartbeat_estimate must be > 0 s, got {first_heartbeat_estimate!r}")
        if problems:
            raise ValueError("PhiAccrualDetector: " + "; ".join(problems))
        self.threshold = float(threshold)
        self.min_std_deviation = float(min_std_deviation)
        self.acceptable_heartbeat_pause = float(acceptable_heartbeat_pause)
        self.max_sample_size = int(max_sample_size)
        self.first_heartbeat_estimate = float(first_heartbeat_estimate)
        self._state: dict[str, _PhiState] = {}

    def _first_history(self) -> _History:
        history = _History(self.max_sample_size)
        mean = self.first_heartbeat_estimate
        std = mean / 4
        history.add(mean - std)
        history.add(mean + std)
        return history

    def heartbeat(self, source: str, at: float) -> None:
        state = self._state.get(source)
        if state is None:
            self._state[source] = _PhiState(self._first_history(), at)
            return
        if at <= state.last:  # duplicate or reordered beat: nothing new to learn
            return
        if self.is_available(source, at):
            state.history.add(at - state.last)
        state.last = at

    def suspicion(self, source: str, now: float) -> float:
        """The phi value: -log10 of the probability that a beat is still to come this late."""
        state = self._state.get(source)
        if state is None:
            return 0.0
        history = state.history
        mean = history.mean + self.acceptable_heartbeat_pause
        std = max(history.std_deviation, self.min_std_deviation)
        return phi(max(0.0, now - state.last), mean, std)

    def is_available(self, source: str, now: float) -> bool:
        return self.suspicion(source, now) < self.threshold

    def forget(self, source: str) -> None:
        self._state.pop(source, None)

    def last_heartbeat(self, source: str) -> float | None:
        state = self._state.get(source)
        return state.last if state else None

    def __repr__(self) -> str:
        return (
            f"PhiAccrualDetector(threshold={self.threshold}, min_std_deviation={self.min_std_deviation}, "
            f"acceptable_heartbeat_pause={self.acceptable_heartbeat_pause}, "
            f"max_sample_size={self.max_sample_size}, "
            f"first_heartbeat_estimate={self.first_heartbeat_estimate})"
        )


def phi(time_diff: float, mean: float, std_deviation: float) -> float:
    """Akka's phi: logistic approximation of the normal CDF's upper tail, as -log10."""
    y = (time_diff - mean) / std_deviation
    # exp overflows past ~709: far below the mean the probability is 1 and phi is 0.
    exponent = -y * (1.5976 + 0.070566 * y * y)
    if exponent > 700:
        return 0.0
    e = math.exp(exponent)
    if time_diff > mean:
        p_later = e / (1.0 + e)
        return -math.log10(p_later) if p_later > 0 else math.inf
    return -math.log10(1.0 - 1.0 / (1.0 + e))


def expected_detection_time(
    detector: FailureDetector, interval: float, jitter: float = 0.1, *, samples: int = 200
) -> float:
    """Seconds from a source's last beat to the detector's DOWN verdict, in steady state.

    Feeds ``detector`` ``samples`` beats whose intervals are spread evenly over
    ``interval * (1 +/- jitter)`` (what uniform jitter looks like on average), then searches
    for the first instant after the last beat at which ``is_available`` turns false. Uses a
    private source name and forgets it afterwards, so the detector's real sources are untouched.
    """
    if interval <= 0:
        raise ValueError(f"expected_detection_time: interval must be > 0, got {interval!r}")
    source = "\x00expected-detection-probe"
    detector.forget(source)
    try:
        t = 0.0
        detector.heartbeat(source, t)
        n = max(2, samples)
        # Evenly spread jitter values in a fixed interleaved order (low, high, low, ...).
        offsets = [jitter * (2 * k / (n - 1) - 1) for k in range(n)]
        order = [offsets[(k * 7919) % n] for k in range(n)] if math.gcd(7919, n) == 1 else offsets
        for off in order:
            t += interval * (1 + off)
            detector.heartbeat(source, t)
        lo, hi = 0.0, interval
        while detector.is_available(source, t + hi):
            lo, hi = hi, hi * 2
            if hi > interval * 1e6:
                return math.inf
        for _ in range(60):
            mid = (lo + hi) / 2
            if detector.is_available(source, t + mid):
                lo = mid
            else:
                hi = mid
        return hi
    finally:
        detector.forget(source)
