"""The virtual clock's loop keeps the stock asyncio loop's semantics: time jumps to the next timer,
timers due at the same instant run in the stock loop's order, sleeps and cancellations behave."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from forge_core.clock import VIRTUAL_EPOCH, VirtualClock, VirtualClockStalled, _VirtualSelector


class _StockVirtualLoop(asyncio.SelectorEventLoop):
    """The reference: the stock loop's own ``_run_once`` over a selector that jumps time."""

    def __init__(self) -> None:
        self._now = [0.0]
        super().__init__(selector=_VirtualSelector(self._now))

    def time(self) -> float:
        return self._now[0]


def _run_to_end(loop: asyncio.AbstractEventLoop, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on ``loop`` as the current loop, then close it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _workload(loop: asyncio.AbstractEventLoop, seed: int, sleep: object) -> list[tuple[float, str]]:
    """Tasks sleeping random (often equal) intervals, timers, cancellations: the order of events."""
    rnd = random.Random(seed)
    log: list[tuple[float, str]] = []

    async def worker(name: str) -> None:
        for step in range(30):
            await sleep(rnd.choice((0.0, 0.5, 1.0, 1.0, 2.5, 3.0)))  # type: ignore[operator]
            log.append((loop.time(), f"{name}:{step}"))
            if rnd.random() < 0.3:
                note = f"timer {name}:{step}"
                loop.call_later(rnd.choice((0.5, 1.0, 2.0)), lambda note=note: log.append((loop.time(), note)))
            if rnd.random() < 0.1:
                handle = loop.call_later(1.0, log.append, (loop.time(), "never"))
                handle.cancel()

    async def main() -> None:
        tasks = [asyncio.ensure_future(worker(f"w{i}")) for i in range(25)]
        await asyncio.sleep(20.0)
        tasks[0].cancel()  # cancelled mid-sleep
        await asyncio.gather(*tasks, return_exceptions=True)

    _run_to_end(loop, main())
    return log


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_events_run_in_the_stock_loops_order_at_the_same_times(seed: int) -> None:
    stock = _workload(_StockVirtualLoop(), seed, asyncio.sleep)
    clock = VirtualClock()
    ours = _workload(clock.loop, seed, clock.sleep)
    assert ours == stock
    assert not any(what == "never" for _, what in ours)
    assert len({at for at, _ in ours}) > 10  # the workload did spread over time, with ties


def test_time_jumps_to_the_next_timer_and_reads_exactly() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    async def main() -> None:
        await clock.sleep(5.0)
        seen.append(clock.monotonic())
        clock.call_later(0.25, lambda: seen.append(clock.monotonic()))
        await clock.sleep(1.0)
        seen.append(clock.time())

    clock.run(main())
    clock.close()
    assert seen == [5.0, 5.25, VIRTUAL_EPOCH + 6.0]


def _readings(loop: asyncio.AbstractEventLoop, wall: object = None) -> list[tuple[str, float, object]]:
    """Where timers find the loop's time: odd delays, one past due, one beyond a day's jump."""
    seen: list[tuple[str, float, object]] = []

    async def main() -> None:
        for n, delay in enumerate((0.1, 1e-10, 0.3, 2.5 * 86_400, 7 / 3, -5.0, 1e5 + 0.7, 0.0)):
            done = loop.create_future()
            loop.call_at(loop.time() + delay, done.set_result, None)
            await done
            seen.append((str(n), loop.time(), wall and wall()))  # type: ignore[operator]

    _run_to_end(loop, main())
    return seen


def test_time_jumps_read_what_the_stock_loops_timeout_gives() -> None:
    """The jump's arithmetic (the stock loop's min(max(0.0, gap), one day) added to the reading) gives
    the same readings to the bit, and ``time()`` follows it."""
    clock = VirtualClock(start=0.0)
    ours = _readings(clock.loop, clock.time)
    assert [(n, at) for n, at, _ in ours] == [(n, at) for n, at, _ in _readings(_StockVirtualLoop())]
    assert all(wall == at for _, at, wall in ours)


def test_a_sleep_cancelled_midway_leaves_no_live_timer() -> None:
    clock = VirtualClock()

    async def main() -> None:
        task = asyncio.ensure_future(clock.sleep(100.0))
        await clock.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert all(entry.handle.cancelled() for entry in clock.loop._scheduled)

    clock.run(main())
    assert clock.elapsed == 1.0
    clock.close()


def test_a_sleep_awaited_on_another_loop_sleeps_there() -> None:
    """The loop is known running by its thread: awaited on a stock loop (the virtual one idle), or in another
    thread while the virtual loop runs, a sleep is that loop's ``asyncio.sleep``, and no virtual timer is left."""
    clock = VirtualClock()
    asyncio.run(clock.sleep(0.001))  # the virtual loop is not running
    assert clock.loop._scheduled == [] and clock.elapsed == 0.0

    slept_elsewhere: list[bool] = []

    def in_a_thread() -> None:
        asyncio.run(clock.sleep(0.001))
        slept_elsewhere.append(True)

    async def main() -> None:
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()  # the virtual loop is running (held in this thread) while the other sleeps
        assert clock.loop._scheduled == []
        await clock.sleep(5.0)

    clock.run(main())
    assert slept_elsewhere == [True] and clock.elapsed == 5.0
    clock.close()


def test_zero_and_negative_sleeps_only_yield() -> None:
    clock = VirtualClock()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        task = asyncio.ensure_future(other())
        await clock.sleep(0)
        assert task.done()
        order.append("main")
        await clock.sleep(-1.0)

    clock.run(main())
    clock.close()
    assert order == ["other", "main"] and clock.elapsed == 0.0


def test_a_loop_with_nothing_to_do_says_it_stalled() -> None:
    clock = VirtualClock()

    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(VirtualClockStalled, match="nothing is scheduled"):
        clock.run(main())
    clock.close()


def test_a_closed_loop_refuses_callbacks() -> None:
    clock = VirtualClock()
    clock.close()
    with pytest.raises(RuntimeError, match="closed"):
        clock.loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        clock.call_later(1.0, print)


def test_many_cancelled_timers_are_swept_and_the_rest_still_fire() -> None:
    clock = VirtualClock()
    fired: list[int] = []

    async def main() -> None:
        handles = [clock.call_later(10.0 + i, fired.append, i) for i in range(300)]
        for handle in handles[:250]:
            handle.cancel()
        await clock.sleep(1.0)  # an iteration sweeps the cancelled majority
        assert len(clock.loop._scheduled) <= 51
        await clock.sleep(400.0)

    clock.run(main())
    clock.close()
    assert fired == list(range(250, 300))


def test_a_callback_that_raises_goes_to_the_loops_exception_handler_and_the_loop_goes_on() -> None:
    clock = VirtualClock()
    reported: list[tuple[str, str, bool]] = []
    clock.loop.set_exception_handler(
        lambda loop, context: reported.append((context["message"], str(context["exception"]),
                                               context["handle"] is not None)))
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("broken timer")

    async def main() -> None:
        clock.call_later(1.0, boom)
        clock.loop.call_soon(boom)
        clock.call_later(2.0, ran.append, "after")
        await clock.sleep(3.0)

    clock.run(main())
    clock.close()
    assert ran == ["after"]
    assert [(message.startswith("Exception in callback"), exc, handle) for message, exc, handle in reported] == [
        (True, "broken timer", True), (True, "broken timer", True)]


def test_debug_mode_keeps_the_stock_checks_and_the_order() -> None:
    clock = VirtualClock()
    clock.loop.set_debug(True)
    order: list[str] = []

    async def main() -> None:
        clock.call_later(1.0, order.append, "b")
        clock.loop.call_at(clock.loop.time() + 0.5, order.append, "a")
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            clock.loop.call_soon(main)  # type: ignore[arg-type]  # the stock check refuses a coroutine function
        await clock.sleep(2.0)

    clock.run(main())
    clock.close()
    assert order == ["a", "b"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_soon_caller_queues_its_callback_where_call_soon_would_at_every_call(debug: bool) -> None:
    """``soon_caller`` (one handle queued again; in debug mode ``call_soon`` itself) runs the callback
    in its context, at the place in the ready queue a ``call_soon`` at that moment would take."""
    clock = VirtualClock()
    clock.loop.set_debug(debug)
    mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark")
    context = contextvars.Context()
    context.run(mark.set, "its own")
    order: list[str] = []

    async def main() -> None:
        again = clock.loop.soon_caller(lambda: order.append(mark.get("none")), context)
        for n in range(3):
            clock.loop.call_soon(order.append, f"before {n}")
            again()
            clock.loop.call_soon(order.append, f"after {n}")
            await asyncio.sleep(0)

    clock.run(main())
    clock.close()
    assert order == [e for n in range(3) for e in (f"before {n}", "its own", f"after {n}")]


def test_a_task_cancelled_at_the_instant_its_sleep_ends_reports_nothing() -> None:
    """A sleep's timer and a callback cancelling the task fire at the same instant, the callback first:
    the timer then finds its future cancelled and drops the wake-up silently (as asyncio.sleep's
    ``_set_result_unless_cancelled``); a callback's own InvalidStateError is still reported."""
    clock = VirtualClock()
    reported: list[str] = []
    clock.loop.set_exception_handler(lambda _loop, context: reported.append(type(context["exception"]).__name__))
    outcome: list[str] = []

    async def sleeper() -> None:
        try:
            await clock.sleep(1.0)
            outcome.append("woke")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def main() -> None:
        holder: list[asyncio.Task[None]] = []
        clock.call_later(1.0, lambda: holder[0].cancel())  # scheduled first: runs before the sleep's timer
        holder.append(asyncio.ensure_future(sleeper()))
        await asyncio.sleep(0)  # the sleeper is now asleep, its timer due at 1.0 behind the cancel
        await asyncio.gather(holder[0], return_exceptions=True)
        done: asyncio.Future[None] = clock.loop.create_future()
        done.cancel()
        clock.loop.call_soon(done.set_result, None)  # not a sleep's timer: its error is reported
        await clock.sleep(1.0)

    clock.run(main())
    clock.close()
    assert outcome == ["cancelled"]
    assert reported == ["InvalidStateError"]


def test_get_debug_follows_set_debug_and_futures_see_it() -> None:
    """``get_debug`` is a C-level read kept in step by ``set_debug``: a future made in debug mode
    records where it was made, as on the stock loop."""
    clock = VirtualClock()
    loop = clock.loop
    assert loop.get_debug() is False and loop.create_future()._source_traceback is None
    loop.set_debug(True)
    assert loop.get_debug() is True
    assert loop.create_future()._source_traceback  # asked of get_debug by C's future_init
    loop.set_debug(False)
    assert loop.get_debug() is False
    clock.close()


def _stop_and_resume(loop: asyncio.AbstractEventLoop) -> list[tuple[int, float, str]]:
    """What runs in each of two ``run_forever`` calls when a callback stops the loop midway,
    with callbacks and timers still due after it (run in the second call, as stock)."""
    log: list[tuple[int, float, str]] = []
    call = [1]

    def note(what: str) -> None:
        log.append((call[0], loop.time(), what))

    def stopper() -> None:
        note("stop")
        loop.call_soon(note, "after stop")  # the next iteration: not this run_forever's
        loop.call_later(0.0, note, "timer now")
        loop.stop()

    loop.call_soon(note, "first")
    loop.call_later(1.0, stopper)
    loop.call_later(1.0, note, "same instant")  # in the stopping iteration's batch: runs before the stop takes
    loop.call_later(2.0, note, "later")
    loop.call_later(3.0, loop.stop)
    loop.run_forever()
    call[0] = 2
    loop.run_forever()
    loop.close()
    return log


def test_a_stop_ends_run_forever_after_the_same_iteration_as_the_stock_loop() -> None:
    # _run_once iterates until the loop is stopping (run_forever's own loop, folded in): it must
    # return exactly where the stock loop's run_forever breaks, and resume where it would.
    stock = _stop_and_resume(_StockVirtualLoop())
    ours = _stop_and_resume(VirtualClock().loop)
    assert ours == stock
    assert [what for run, _, what in ours if run == 1] == ["first", "stop", "same instant"]
