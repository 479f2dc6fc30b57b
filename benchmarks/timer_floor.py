"""The floor of a simulated run: the virtual clock waking a plant's periodic timers with no work
behind them, shared by the simulated-day benchmarks (bench_*_sim.py, through sim_day.day_main).

:func:`bare` wakes a task per timer (what a component's loop that sleeps costs); :func:`callbacks` the same
wake-ups as ``call_at`` callbacks on the same loop (no task, no coroutine: the least the design's asyncio
costs); :func:`heap` from a heap of (time, timer) with no asyncio at all (the tightest discrete-event loop).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Coroutine
from typing import Any

from forge_core import VirtualClock


def bare(timers: list[tuple[float, int]], seconds: float) -> tuple[float, int]:
    """Wall seconds and wake-ups for ``seconds`` of virtual time with ``timers`` ((interval, how many))."""
    clock = VirtualClock()
    wakeups = [0]

    async def tick(interval: float) -> None:
        while True:
            await clock.sleep(interval)
            wakeups[0] += 1

    async def main() -> None:
        tasks = [asyncio.ensure_future(tick(i)) for i, n in timers for _ in range(n)]
        await clock.sleep(seconds)
        for task in tasks:
            task.cancel()

    return _run(clock, main(), time.perf_counter), wakeups[0]


def _run(clock: VirtualClock, main: Coroutine[Any, Any, None], timer: Callable[[], float]) -> float:
    """``timer``'s seconds for ``clock`` to run ``main``; the clock is closed after."""
    start = timer()
    try:
        clock.run(main)
    finally:
        clock.close()
    return timer() - start


def _intervals(timers: list[tuple[float, int]]) -> list[float]:
    return [interval for interval, n in timers for _ in range(n)]


def callbacks(timers: list[tuple[float, int]], seconds: float) -> tuple[float, int]:
    """:func:`bare`'s wake-ups as ``call_at`` callbacks on the virtual loop: CPU seconds and wake-ups."""
    clock = VirtualClock()
    wakeups = [0]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        call_at, now = loop.call_at, loop.time

        def wake(interval: float) -> None:
            wakeups[0] += 1
            call_at(now() + interval, wake, interval)

        for interval in _intervals(timers):
            call_at(now() + interval, wake, interval)
        await clock.sleep(seconds)

    return _run(clock, main(), time.process_time), wakeups[0]


def heap(timers: list[tuple[float, int]], seconds: float) -> tuple[float, int]:
    """:func:`bare`'s wake-ups from a heap of (time, timer), no asyncio: CPU seconds and wake-ups."""
    intervals = _intervals(timers)
    start = time.process_time()
    queue = [(interval, i) for i, interval in enumerate(intervals)]
    heapq.heapify(queue)
    pop, push = heapq.heappop, heapq.heappush
    wakeups = 0
    while queue[0][0] <= seconds:
        at, i = pop(queue)
        wakeups += 1
        push(queue, (at + intervals[i], i))
    return time.process_time() - start, wakeups
