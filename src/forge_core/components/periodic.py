"""The loop behind :meth:`ComponentContext.every`: call ``fn`` every ``interval`` seconds of the clock.

On a :class:`~forge_core.clock.VirtualClock` the loop waits on each tick's future itself, the body of
``VirtualClock.sleep`` inlined: a coroutine level less per tick (the ``sleep`` coroutine made, resumed
and finished each time, ~2,700 of a bare wake-up's ~21,000 instructions; docs/performance.md). The
timer is pushed, fired and woken exactly as ``sleep`` does it (the same heap entry at the same moment,
the future's ``set_result`` run by the timer, the task resuming at the next iteration), so timers due at the same
instant run in the same order and a seed's trace is unchanged. Any other clock (or a ``VirtualClock``
whose ``sleep`` is another, a subclass's or one set on the instance): its ``sleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from heapq import heappush
from inspect import isawaitable
from typing import Any

from forge_core.clock import _NONE, _WAKE_CONTEXT, Clock, RealClock, VirtualClock, _Due, _wake

_new = object.__new__
_Future, _TimerHandle, _running_loop = asyncio.Future, asyncio.TimerHandle, asyncio.get_running_loop

_VIRTUAL_SLEEP = VirtualClock.sleep  # what the loop below inlines (a subclass's own sleep is called)
_REAL_SLEEP = RealClock.sleep


def sleeps_on_running_loop(clock: Clock) -> bool:
    """Whether ``clock.sleep(d)`` waits for a timer of the running loop ``d`` seconds of ``loop.time()`` away
    (a ``VirtualClock`` on its own loop, a ``RealClock``, with the sleep of their classes): then a timer
    callback of that loop is due when the sleep would have ended (``ComponentContext.every``'s sync path)."""
    sleep = getattr(clock.sleep, "__func__", None)
    if sleep is _VIRTUAL_SLEEP:
        try:
            return getattr(clock, "loop", None) is _running_loop()
        except RuntimeError:  # called outside the loop (a test's set-up): the task's path, as before
            return False
    return sleep is _REAL_SLEEP

Tick = Callable[[], Awaitable[None] | None]


async def periodic(clock: Clock, interval: float, first: float, fn: Tick) -> None:
    """Sleep ``first`` seconds, then call ``fn`` and sleep ``interval`` seconds, forever; a call's
    awaitable is awaited before the next sleep. A call that raises ends the loop with its exception."""
    own_sleep = getattr(clock.sleep, "__func__", None) is not _VIRTUAL_SLEEP
    if own_sleep or getattr(clock, "loop", None) is not _running_loop():
        sleep = clock.sleep  # per tick: no attribute chain, no isawaitable() for a None
        await sleep(first)
        while True:
            result = fn()
            if result is not None and isawaitable(result):
                await result
            await sleep(interval)
    loop: Any = getattr(clock, "loop", None)
    delay = first
    if delay <= 0:  # sleep(0)'s one yield, as before
        await clock.sleep(delay)
        result = fn()
        if result is not None and isawaitable(result):
            await result
        delay = interval
    while True:
        # VirtualClock.sleep(delay)'s body (see there): the loop is this task's, running, so not closed
        future: asyncio.Future[None] = _Future(loop=loop)  # no running-loop lookup (a getpid() in 3.11)
        when = loop._virtual_now[0] + delay
        if loop._debug:
            timer: Any = loop.call_at(when, _wake, future)
        else:
            timer = _new(_TimerHandle)
            timer._callback = future.set_result  # as VirtualClock.sleep: a cancelled future's error dropped
            timer._args = _NONE
            timer._cancelled = False
            timer._loop = loop
            timer._source_traceback = None
            timer._repr = None
            timer._context = _WAKE_CONTEXT
            timer._when = when
            timer._scheduled = True
            entry = _Due(when)
            entry.handle = timer
            heappush(loop._scheduled, entry)
        try:
            await future
        finally:
            if timer._scheduled:  # not fired (cancelled while asleep)
                timer.cancel()
        result = fn()
        if result is not None and isawaitable(result):
            await result
        delay = interval
