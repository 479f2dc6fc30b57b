"""Backpressure by sampling interval, with hysteresis.

The seed switched sensor sampling from 250 ms to 2,000 ms when a queue passed 1,000 messages and
back when it fell below 500 for 5 s. Two thresholds plus a settling time keep the interval from
flapping when the depth hovers near one threshold.
"""

from __future__ import annotations

from collections.abc import Callable

from forge_core.clock import Clock, RealClock

__all__ = ["BackpressureController"]


class BackpressureController:
    """Maps queue depth to a sampling interval: slow above ``high``; fast again after ``settle``.

    Switches to ``slow_interval`` as soon as an update sees ``depth > high``; returns to
    ``fast_interval`` at the first update after depth has stayed ``< low`` for ``settle``
    seconds (any update at or above ``low`` restarts the settling time). Calls
    ``on_change(old_interval, new_interval, depth)`` on each switch.
    """

    def __init__(
        self,
        high: int = 1000,
        low: int = 500,
        fast_interval: float = 0.25,
        slow_interval: float = 2.0,
        settle: float = 5.0,
        clock: Clock | None = None,
        on_change: Callable[[float, float, int], None] | None = None,
    ) -> None:
        if not low < high:
            raise ValueError(f"BackpressureController: low ({low}) must be below high ({high})")
        if settle < 0:
            raise ValueError(f"BackpressureController: settle must be >= 0 s, got {settle!r}")
        self.high = high
        self.low = low
        self.fast_interval = fast_interval
        self.slow_interval = slow_interval
        self.settle = settle
        self.clock = clock or RealClock()
        self.on_change = on_change
        self.interval = fast_interval
        self.switches = 0
        self._below_since: float | None = None

    @property
    def throttled(self) -> bool:
        return self.interval == self.slow_interval and self.slow_interval != self.fast_interval

    def update(self, queue_depth: int) -> float:
        """Feed the current depth; returns the interval to sample at now."""
        now = self.clock.monotonic()
        if not self.throttled:
            if queue_depth > self.high:
                self._switch(self.slow_interval, queue_depth)
                self._below_since = None
            return self.interval
        if queue_depth < self.low:
            if self._below_since is None:
                self._below_since = now
            if now - self._below_since >= self.settle:
                self._below_since = None
                self._switch(self.fast_interval, queue_depth)
        else:
            self._below_since = None
        return self.interval

    def _switch(self, new: float, depth: int) -> None:
        old = self.interval
        self.interval = new
        self.switches += 1
        if self.on_change is not None:
            self.on_change(old, new, depth)
