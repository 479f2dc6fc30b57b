"""The floor of a simulated run: the virtual clock waking a plant's periodic timers with no work
behind them, shared by the simulated-day benchmarks (bench_*_sim.py, through sim_day.day_main)."""

from __future__ import annotations

import asyncio
import time

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

    start = time.perf_counter()
    try:
        clock.run(main())
    finally:
        clock.close()
    return time.perf_counter() - start, wakeups[0]
