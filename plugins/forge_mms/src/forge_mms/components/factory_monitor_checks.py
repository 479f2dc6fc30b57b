"""``mms.factory_monitor``'s check timer: its checks and, between two, the leader's silence verdicts.

They run on a timer callback of the loop (``ctx.timer``), not in a task that sleeps between them: a task's
wake-up per check (the sleep's future and timer, the task's step, its coroutine resumed) was most of what a
check cost, ~13,000 of them in industry40's simulated two hours. The check's coroutine is run there by ``ctx.run_soon``:
on the in-memory transport with nothing to publish (nearly every check) it ends at its first step; one that
waits (a publish to a broker, an offloaded write) is finished in a task of the component before the next sleep,
as the task awaited it. So a status change is published at once, before any other callback of the instant
(a beat of that factory) can publish a later one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_mms.components.factory_monitor import FactoryMonitor

__all__ = ["CheckTimer"]


class CheckTimer:
    """A check ``first`` s from now, then every ``check_every`` s while the monitor leads, every
    ``shadow_check_every`` s while not. Between two checks the leader also wakes at the instant the first
    silence verdict can fall (:meth:`FaultDetector.next_verdict`) and judges silence alone: a verdict at its
    exact instant, not at the next check (the loop's wake-ups: 1 a second, not 4)."""

    def __init__(self, monitor: FactoryMonitor, first: float) -> None:
        self.monitor = monitor
        clock = monitor.ctx.clock
        self.time, self.monotonic = clock.time, clock.monotonic
        self.sleeping = False  # between two calls (a takeover cuts the sleep short: cancel, check, a new timer)
        self._tick = self.time() + first  # the next check's time
        self._timer = monitor.ctx.timer(first, self._wake, initial_delay=self._sleep(), name="check")

    def cancel(self) -> None:
        self.sleeping = False  # ended: not cut short twice
        self._timer.cancel()

    def _sleep(self) -> float:
        """The sleep to the next check, or to the leader's first silence verdict before it."""
        monitor = self.monitor
        now = self.time()
        wait = self._tick - now
        if monitor.leading:  # a beat heard while asleep only puts its factory's verdict later
            faults = monitor.faults
            due = min(faults.next_verdict(self._tick), now + faults.up_rule)  # or a new (recovered) UP factory's
            if now < due < self._tick:
                wait = due - now
        monitor.guard.expect(self.monotonic() + wait)  # a wake-up later than this is the loop starving it
        self.sleeping = True
        return wait

    def _wake(self) -> float | Awaitable[float]:
        self.sleeping = False
        now = self.time()
        checking = now >= self._tick - 1e-9
        monitor = self.monitor
        rest = monitor.ctx.run_soon(monitor.check() if checking else monitor.judge_silence(now), name="check")
        if rest is None:
            return self._next_sleep(checking)
        return self._after(rest, checking)

    async def _after(self, rest: asyncio.Task[None], checked: bool) -> float:
        await rest
        return self._next_sleep(checked)

    def _next_sleep(self, checked: bool) -> float:
        if checked:
            monitor = self.monitor
            self._tick = self.time() + (monitor.params.check_every if monitor.leading else monitor.shadow_every)
        return self._sleep()
