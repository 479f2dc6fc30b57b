"""``mms.factory_monitor``'s check timer: its checks and, between two, the leader's silence verdicts.

They run on a timer callback of the loop (``ctx.timer``), not in a task that sleeps between them: a task's
wake-up per check (the sleep's future and timer, the task's step, its coroutine resumed) was most of what a
check cost, ~13,000 of them in industry40's simulated two hours. The check's coroutine is run by hand there:
on the in-memory transport with nothing to publish (nearly every check) it ends at its first step; one that
waits (a publish to a broker, an offloaded write) is finished in a task of the component before the next sleep,
as the task awaited it. So a status change is published at once, before any other callback of the instant
(a beat of that factory) can publish a later one.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_mms.components.factory_monitor import FactoryMonitor

__all__ = ["CheckTimer"]


@types.coroutine
def _rest_of(step: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, Any, None]:
    """Await the rest of ``step``, whose first step (run by hand) yielded ``pending``: what it yields goes to the
    awaiting task, what the task sends or throws (a cancellation) goes back to it."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            step.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown into the task (its cancellation): the step's to handle
            try:
                pending = step.throw(exc)
            except StopIteration:
                return
        else:
            try:
                pending = step.send(sent)
            except StopIteration:
                return


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
        step = self.monitor.check() if checking else self.monitor.judge_silence(now)
        try:
            pending = step.send(None)
        except StopIteration:
            return self._next_sleep(checking)
        return self._finish(step, pending, checking)

    async def _finish(self, step: Coroutine[Any, Any, None], pending: Any, checked: bool) -> float:
        await _rest_of(step, pending)
        return self._next_sleep(checked)

    def _next_sleep(self, checked: bool) -> float:
        if checked:
            monitor = self.monitor
            self._tick = self.time() + (monitor.params.check_every if monitor.leading else monitor.shadow_every)
        return self._sleep()
