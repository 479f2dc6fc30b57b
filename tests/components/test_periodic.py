"""ComponentContext.every's loop (forge_core.components.periodic): on the virtual clock it waits on its
timer's future itself, without a ``sleep`` coroutine, and must call in the very order a loop awaiting
``clock.sleep`` did (the trace digests of the plants depend on it)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from forge_core.clock import RealClock, VirtualClock
from forge_core.components.periodic import periodic


async def _sleeping_loop(clock: Any, interval: float, first: float, fn: Callable[[], Any]) -> None:
    """The reference: every()'s loop as it was (a task awaiting clock.sleep)."""
    sleep = clock.sleep
    await sleep(first)
    while True:
        result = fn()
        if result is not None and asyncio.iscoroutine(result):
            await result
        await sleep(interval)


Loop = Callable[[Any, float, float, Callable[[], Any]], Coroutine[Any, Any, None]]


def _workload(seed: int, loop_of: Loop) -> list[tuple[float, str]]:
    """Periodic calls (sync and async, some sleeping, equal and different intervals, first at once or
    later), workers sleeping the same intervals, timers, cancellations: the order of events."""
    rnd = random.Random(seed)
    clock = VirtualClock()
    log: list[tuple[float, str]] = []

    def ticker(name: str, kind: str) -> Callable[[], Awaitable[None] | None]:
        def sync() -> None:
            log.append((clock.monotonic(), name))
            if rnd.random() < 0.2:
                clock.call_later(rnd.choice((0.0, 0.5, 1.0)), lambda: log.append((clock.monotonic(), f"t:{name}")))

        async def coro() -> None:
            log.append((clock.monotonic(), name))
            if rnd.random() < 0.3:
                await clock.sleep(rnd.choice((0.0, 0.25, 1.0)))
                log.append((clock.monotonic(), f"{name} resumed"))

        return sync if kind == "sync" else coro

    async def worker(name: str) -> None:
        for step in range(40):
            await clock.sleep(rnd.choice((0.0, 0.5, 1.0, 1.0, 2.0)))
            log.append((clock.monotonic(), f"{name}:{step}"))

    async def main() -> None:
        tasks = []
        for i in range(8):
            interval = rnd.choice((0.5, 1.0, 1.0, 2.0))
            first = rnd.choice((0.0, interval, 0.5, 1.0))
            fn = ticker(f"p{i}", rnd.choice(("sync", "async")))
            tasks.append(asyncio.ensure_future(loop_of(clock, interval, first, fn)))
            tasks.append(asyncio.ensure_future(worker(f"w{i}")))
        await clock.sleep(30.0)
        for task in tasks[::3]:  # some cancelled midway, the rest at the end
            task.cancel()
        await clock.sleep(10.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.append((clock.monotonic(), f"{sum(not e.handle.cancelled() for e in clock.loop._scheduled)} live"))

    try:
        clock.run(main())
    finally:
        clock.close()
    return log


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_calls_come_in_the_order_of_a_loop_awaiting_clock_sleep(seed: int) -> None:
    reference = _workload(seed, _sleeping_loop)
    assert len(reference) > 500
    assert _workload(seed, periodic) == reference


def test_a_periodic_loop_cancelled_asleep_leaves_no_live_timer() -> None:
    clock = VirtualClock()
    calls: list[float] = []

    async def main() -> None:
        task = asyncio.ensure_future(periodic(clock, 10.0, 10.0, lambda: calls.append(clock.monotonic())))
        await clock.sleep(25.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(entry.handle.cancelled() for entry in clock.loop._scheduled)

    clock.run(main())
    clock.close()
    assert calls == [10.0, 20.0] and clock.elapsed == 25.0


def test_a_call_that_raises_ends_the_loop_with_its_exception() -> None:
    clock = VirtualClock()
    calls = [0]

    def fn() -> None:
        calls[0] += 1
        if calls[0] == 3:
            raise ValueError("third call")

    with pytest.raises(ValueError, match="third call"):
        clock.run(periodic(clock, 1.0, 0.0, fn))
    clock.close()
    assert calls[0] == 3 and clock.elapsed == 2.0


def test_a_virtual_clock_subclass_with_its_own_sleep_is_asked_to_sleep() -> None:
    slept: list[float] = []

    class Counting(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            slept.append(seconds)
            await super().sleep(seconds)

    clock = Counting()
    calls: list[float] = []

    async def main() -> None:
        task = asyncio.ensure_future(periodic(clock, 2.0, 1.0, lambda: calls.append(clock.monotonic())))
        await clock.sleep(6.0)
        task.cancel()

    clock.run(main())
    clock.close()
    assert calls == [1.0, 3.0, 5.0] and slept[:1] == [6.0] and slept.count(2.0) >= 2


def test_a_sleep_set_on_the_instance_is_asked_to_sleep() -> None:
    clock = VirtualClock()
    slept: list[float] = []
    virtual_sleep = clock.sleep

    async def counting(seconds: float) -> None:
        slept.append(seconds)
        await virtual_sleep(seconds)

    clock.sleep = counting  # type: ignore[method-assign]
    calls: list[float] = []

    async def main() -> None:
        task = asyncio.ensure_future(periodic(clock, 2.0, 1.0, lambda: calls.append(clock.monotonic())))
        await virtual_sleep(6.0)
        task.cancel()

    clock.run(main())
    clock.close()
    assert calls == [1.0, 3.0, 5.0] and slept[:3] == [1.0, 2.0, 2.0]


def test_on_the_real_clock_it_sleeps_through_the_clock() -> None:
    calls: list[float] = []
    clock = RealClock()
    loop = asyncio.new_event_loop()

    async def tick() -> None:
        calls.append(loop.time())

    async def main() -> None:
        task = asyncio.ensure_future(periodic(clock, 0.01, 0.0, tick))
        while len(calls) < 3:
            await asyncio.sleep(0.005)
        task.cancel()

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 10.0))
    finally:
        loop.close()
    assert len(calls) >= 3 and calls == sorted(calls)
