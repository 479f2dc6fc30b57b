"""ctx.timer and ctx.every of a sync function (forge_core.components.timers): periodic work on the loop's timer
callbacks, on the virtual clock, on a real loop and in a plant (publish_soon and run_soon: test_timers_soon.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from forge_core import TransportError
from forge_core.clock import RealClock, VirtualClock
from forge_core.components.timers import EveryTimer, PeriodicTimer
from forge_core.testing import TestPlant


class Spawner:
    """A component's spawn, as far as the timers use it: the tasks and their errors kept."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def __call__(self, coro: Awaitable[Any], *, name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    def errors(self) -> list[BaseException]:
        return [t.exception() for t in self.tasks if t.done() and not t.cancelled() and t.exception() is not None]


def run_virtual(main: Callable[[VirtualClock], Awaitable[Any]]) -> Any:
    clock = VirtualClock()
    try:
        return clock.run(main(clock))  # type: ignore[arg-type]
    finally:
        clock.close()


def test_calls_come_every_interval_or_after_the_delay_the_call_returns() -> None:
    async def main(clock: VirtualClock) -> list[float]:
        calls: list[float] = []
        delays = iter([None, 0.25, 3.0, None])

        def fn() -> float | None:
            calls.append(clock.monotonic())
            return next(delays, None)

        timer = PeriodicTimer(fn, 1.0, 0.5, spawn=Spawner(), name="t")
        await clock.sleep(7.0)
        timer.cancel()
        await clock.sleep(5.0)
        return calls

    assert run_virtual(main) == [0.5, 1.5, 1.75, 4.75, 5.75, 6.75]


def test_a_returned_awaitable_runs_in_a_task_and_its_result_times_the_next_call() -> None:
    async def main(clock: VirtualClock) -> tuple[list[tuple[float, str]], int]:
        log: list[tuple[float, str]] = []

        async def slow(delay: float | None) -> float | None:
            await clock.sleep(0.5)
            log.append((clock.monotonic(), "slow done"))
            return delay

        results = iter([slow(2.0), slow(None), None])

        def fn() -> Any:
            log.append((clock.monotonic(), "call"))
            return next(results, None)

        spawn = Spawner()
        PeriodicTimer(fn, 1.0, 1.0, spawn=spawn, name="t")
        await clock.sleep(6.0)
        return log, len(spawn.tasks)

    log, tasks = run_virtual(main)
    assert log == [(1.0, "call"), (1.5, "slow done"), (3.5, "call"), (4.0, "slow done"), (5.0, "call"),
                   (6.0, "call")]
    assert tasks == 2, "a task only for a call that returned an awaitable"


def test_an_error_ends_the_timer_and_is_handed_to_a_task() -> None:
    async def main(clock: VirtualClock) -> tuple[int, list[BaseException], bool]:
        calls = []

        def fn() -> None:
            calls.append(clock.monotonic())
            if len(calls) == 2:
                raise RuntimeError("a bug in the callback")

        spawn = Spawner()
        timer = PeriodicTimer(fn, 1.0, 1.0, spawn=spawn, name="t")
        await clock.sleep(5.0)
        return len(calls), spawn.errors(), timer.cancelled()

    calls, errors, cancelled = run_virtual(main)
    assert calls == 2 and cancelled
    assert [str(e) for e in errors] == ["a bug in the callback"]


def test_cancel_from_the_call_or_while_its_awaitable_runs() -> None:
    async def main(clock: VirtualClock) -> tuple[list[float], list[float], bool]:
        own: list[float] = []
        timer_box: list[PeriodicTimer] = []

        def stops_itself() -> None:
            own.append(clock.monotonic())
            if len(own) == 3:
                timer_box[0].cancel()

        timer_box.append(PeriodicTimer(stops_itself, 1.0, 1.0, spawn=Spawner(), name="own"))
        waited: list[float] = []

        async def long() -> float:
            await clock.sleep(10.0)
            waited.append(clock.monotonic())
            return 1.0

        spawn = Spawner()
        outside = PeriodicTimer(long, 1.0, 1.0, spawn=spawn, name="outside")
        await clock.sleep(2.0)
        outside.cancel()  # its awaitable is running: cancelled with it
        await clock.sleep(20.0)
        return own, waited, spawn.tasks[0].cancelled()

    own, waited, task_cancelled = run_virtual(main)
    assert own == [1.0, 2.0, 3.0]
    assert waited == [] and task_cancelled


def test_every_s_timer_calls_an_interval_after_each_call_or_its_awaitable_and_reads_no_delay() -> None:
    async def main(clock: VirtualClock) -> tuple[list[tuple[float, str]], int]:
        log: list[tuple[float, str]] = []

        async def slow() -> float:
            await clock.sleep(0.5)
            log.append((clock.monotonic(), "slow done"))
            return 9.0  # not a delay for every()

        results = iter([None, slow(), 5.0, None])

        def fn() -> Any:
            log.append((clock.monotonic(), "call"))
            return next(results, None)

        spawn = Spawner()
        EveryTimer(fn, 1.0, 0.25, spawn=spawn, name="every")
        await clock.sleep(5.0)
        return log, len(spawn.tasks)

    log, tasks = run_virtual(main)
    assert log == [(0.25, "call"), (1.25, "call"), (1.75, "slow done"), (2.75, "call"), (3.75, "call"),
                   (4.75, "call")]
    assert tasks == 1, "a task only for the awaitable"


def test_works_on_a_real_asyncio_loop() -> None:
    async def main() -> list[int]:
        calls: list[int] = []

        def fn() -> float:
            calls.append(len(calls))
            return 0.001

        timer = PeriodicTimer(fn, 1.0, 0.0, spawn=Spawner(), name="real")
        while len(calls) < 5:
            await RealClock().sleep(0.001)
        timer.cancel()
        return calls

    assert asyncio.run(main())[:5] == [0, 1, 2, 3, 4]


# -- in a plant: the component's life --------------------------------------------------------------

TICKER_PLUGIN = '''
import asyncio

from forge_core import Component, TransportError, hookimpl


class Ticker(Component):
    """Publishes a reading on a timer; records what happened to each."""

    async def start(self):
        self.calls, self.published, self.failed = [], [], []
        self.crash = False
        self.churn = 0  # short-lived timers each call makes and cancels
        self.timer = self.ctx.timer(1.0, self.tick, initial_delay=0.5)

    def tick(self):
        self.calls.append(self.ctx.clock.monotonic())
        if self.crash:
            raise RuntimeError("a bug in tick")
        for _ in range(self.churn):
            self.ctx.timer(1.0, lambda: None).cancel()
        return self.ctx.publish_soon("plant/ticker/reading", "test.reading",
                                     {"machine": self.ctx.name, "value": 0.5}, on_published=self.published.append,
                                     on_failed=lambda exc, payload: self.failed.append(str(exc)))


@hookimpl
def forge_register_components(registry):
    registry.add("test.ticker", Ticker)
'''

TICKER_MANIFEST = """
version: 1
plant: {name: tickers}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  ticker: {type: test.ticker}
storage: {migrate_on_start: false}
"""


def test_a_timer_publishes_on_the_memory_bus_without_a_task(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        ticker: Any = plant.component("ticker")
        plant.advance(3.0)
        assert ticker.calls == [0.5, 1.5, 2.5] and len(ticker.published) == 3 and not ticker.ctx._tasks
        assert [e.payload for e in plant.sent("plant/ticker/reading")] == [{"machine": "ticker", "value": 0.5}] * 3


def test_a_publish_that_waits_delays_the_next_call_until_it_is_done(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        ticker: Any = plant.component("ticker")
        publish, waits = ticker.ctx.publish, {"left": 2}

        async def slow(topic: str, type_: str, payload: Any, **kw: Any) -> Any:
            if waits["left"] > 0:
                waits["left"] -= 1
                await ticker.ctx.clock.sleep(0.25)
                if waits["left"] == 0:
                    raise TransportError("timed out (test)")
            return await publish(topic, type_, payload, **kw)

        ticker.ctx.publish = slow
        plant.advance(4.0)
        assert ticker.calls == [0.5, 1.75, 3.0, 4.0], "the interval counted from each publish's end"
        assert ticker.failed == ["timed out (test)"] and len(ticker.published) == 3


def test_a_call_that_raises_crashes_the_component_and_its_timer_ends(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        first: Any = plant.component("ticker")
        plant.advance(1.0)
        first.crash = True
        plant.advance(1.0)
        assert first.timer.cancelled() and first.calls == [0.5, 1.5]
        plant.run_until(lambda: plant.state("ticker") == "running" and plant.component("ticker") is not first,
                        timeout=60)
        plant.advance(3.0)
        assert first.calls == [0.5, 1.5], "the crashed life is called no more"
        assert len(plant.component("ticker").calls) == 3  # type: ignore[attr-defined]


def test_kill_and_stop_cancel_the_timer(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        first: Any = plant.component("ticker")
        plant.advance(1.0)
        plant.kill("ticker")
        plant.advance(5.0)
        assert first.timer.cancelled() and first.calls == [0.5]
        plant.revive("ticker")
        second: Any = plant.component("ticker")
        plant.advance(2.0)
        assert len(second.calls) == 2
    assert second.timer.cancelled(), "the plant's stop ended it"


def test_every_of_a_sync_function_runs_on_a_timer_and_of_a_coroutine_function_in_a_task(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        ctx: Any = plant.component("ticker").ctx
        calls: list[float] = []

        async def in_task() -> None:
            calls.append(-ctx.clock.monotonic())

        made: list[Any] = []

        def start() -> None:  # on the loop, as a component's start
            made.append(ctx.every(1.0, lambda: calls.append(ctx.clock.monotonic()), initial_delay=0.5))
            made.append(ctx.every(1.0, in_task, initial_delay=0.5))

        ctx.clock.call_later(0.0, start)
        plant.advance(0.1)
        on_timer, task = made
        assert isinstance(on_timer, EveryTimer) and isinstance(task, asyncio.Task)
        plant.advance(2.0)
        first = min(abs(c) for c in calls)
        assert sorted(round(abs(c) - first, 6) for c in calls) == [0.0, 0.0, 1.0, 1.0]
    assert on_timer.cancelled() and task.done(), "both end with the component's life"


def test_an_ended_timer_is_not_held_by_the_component(plant_dir) -> None:
    with TestPlant(plant_dir(TICKER_MANIFEST, plugin=TICKER_PLUGIN), seed=1) as plant:
        ticker: Any = plant.component("ticker")
        ticker.churn = 100
        plant.advance(1.0)
        assert ticker.calls == [0.5] and ticker.ctx._timers == {ticker.timer}, "cancelled timers are forgotten"
        ticker.crash = True
        plant.advance(1.0)
        assert ticker.timer.cancelled() and ticker.timer not in ticker.ctx._timers, "so is a crashed call's"
