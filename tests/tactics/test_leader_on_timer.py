"""LeaderElector.run_on_timer (what ctx.elector uses for a backend that answers at once on the loop's clock):
the loop of run() on a timer callback, with the same elections, depositions and hand-overs at the same instants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from forge_core.clock import VirtualClock
from forge_core.components.timers import PeriodicTimer
from forge_core.tactics.leader import LeaderElector, LeaseBackendUnavailable, MemoryLeaseBackend


class FlakyBackend(MemoryLeaseBackend):
    """The memory backend, unreachable while ``down``."""

    answers_at_once = True  # declared by the class itself (the elector reads it from there)

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Any:
        if self.down:
            raise LeaseBackendUnavailable("down (test)")
        return await super().try_acquire(name, holder, ttl, now)

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Any:
        if self.down:
            raise LeaseBackendUnavailable("down (test)")
        return await super().renew(name, holder, epoch, ttl, now)


def scenario(on_timer: bool, awaited_callbacks: bool) -> list[tuple[float, str, str, int]]:
    """Two electors; the backend away for 2.5 s (the leader deposes itself); a leader released; the events."""
    clock = VirtualClock()
    backend = FlakyBackend()
    events: list[tuple[float, str, str, int]] = []
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coro: Awaitable[Any], *, name: str = "") -> asyncio.Task[Any]:
        tasks.append(asyncio.ensure_future(coro))
        return tasks[-1]

    def timer(interval: float, fn: Any, *, initial_delay: float, name: str) -> PeriodicTimer:
        return PeriodicTimer(fn, interval, initial_delay, spawn=spawn, name=name)

    def callback(kind: str, holder: str) -> Any:
        def sync(epoch: int) -> None:
            events.append((round(clock.monotonic(), 6), kind, holder, epoch))

        async def waits(epoch: int) -> None:
            await clock.sleep(0.05)
            sync(epoch)

        return waits if awaited_callbacks else sync

    def elector(holder: str) -> LeaderElector:
        el = LeaderElector(backend, "line", holder, clock, on_elected=callback("elected", holder),
                           on_deposed=callback("deposed", holder))
        if on_timer:
            el.run_on_timer(timer)
        else:
            spawn(el.run())
        return el

    async def main() -> None:
        a = elector("a")
        await clock.sleep(0.01)
        b = elector("b")
        await clock.sleep(3.0)
        backend.down = True
        await clock.sleep(2.5)
        backend.down = False
        await clock.sleep(3.0)
        for el in (a, b):
            if el.is_leader:
                await el.release()
        await clock.sleep(3.0)
        await a.release()
        await b.release()
        await clock.sleep(1.0)

    try:
        clock.run(main())
    finally:
        clock.close()
    assert not [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    return events


@pytest.mark.parametrize("awaited_callbacks", [False, True], ids=["sync_callbacks", "async_callbacks"])
def test_the_timer_s_loop_elects_and_deposes_as_the_task_s_loop(awaited_callbacks: bool) -> None:
    in_task = scenario(on_timer=False, awaited_callbacks=awaited_callbacks)
    on_timer = scenario(on_timer=True, awaited_callbacks=awaited_callbacks)
    assert [kind for _, kind, _, _ in in_task].count("deposed") >= 2, "self-deposition and release covered"
    assert on_timer == in_task
