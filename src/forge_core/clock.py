"""Injected time: every timeout, interval and lease in Forge reads a :class:`Clock`.

``RealClock`` runs on the normal asyncio event loop. ``VirtualClock`` owns an event loop whose
time is virtual: when nothing is ready to run, the loop jumps straight to the next timer instead
of sleeping. All asyncio primitives (``asyncio.sleep``, ``wait_for``, ``call_later``) then run
in virtual time, so a plant day passes in seconds and, with no threads and no real I/O, the
same seed gives the same order of events.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import threading
import time
from asyncio import InvalidStateError, format_helpers
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from heapq import heappop, heappush
from operator import getitem
from typing import Any, Protocol, TypeVar, runtime_checkable

from forge_core.clock_selector import _STALLED
from forge_core.clock_selector import VirtualClockStalled as VirtualClockStalled  # re-exported
from forge_core.clock_selector import _VirtualSelector as _VirtualSelector  # the loop's, and test_clock's

T = TypeVar("T")

_wall_time, _monotonic = time.time, time.monotonic
_new, _copy_context = object.__new__, contextvars.copy_context

#: Virtual runs start at this instant (2024-01-01T00:00:00Z) unless told otherwise, so that
#: reports and traces of two runs with the same seed are identical.
VIRTUAL_EPOCH = 1_704_067_200.0


@runtime_checkable
class Clock(Protocol):
    """What components and tactics may ask of time."""

    def time(self) -> float:
        """Wall-clock time in seconds since the Unix epoch."""

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for measuring intervals."""

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds on the running loop."""


class RealClock:
    """The machine's clock, on whatever asyncio loop is running."""

    is_virtual = False

    #: ``time.time`` and ``time.monotonic`` themselves, not methods calling them: the bus reads the
    #: clock per message, and a Python frame around a C call costs more than the call.
    time = staticmethod(_wall_time)
    monotonic = staticmethod(_monotonic)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(main)


class _VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop purpose-built for virtual time.

    Semantics are the stock loop's (the same timer heap operations, so timers due at the same
    instant run in the same order and a seed's trace digest is unchanged), with the work a
    simulated run does not need taken out of each iteration: no selector poll or event
    processing (the selector is only the loop's bookkeeping), no debug checks on every
    ``call_soon``/``call_at``, and time jumps straight to the earliest timer. A simulated day
    is mostly this loop's iterations (every sleep, message hand-off and task step).

    The heap holds :class:`_Due` entries (the due time as a float, carrying the handle): ``heapq``
    compares them in C where the stock heap calls ``TimerHandle.__lt__`` (a Python frame), with the
    same swaps (both compare the due time alone), so ties come out in the same order. ``time()`` and
    ``get_debug()`` (asked by C's ``Future()``) are C-level reads, as is :meth:`VirtualClock.time`.
    Outside debug mode handles are made without the stock constructors' frames and run without
    ``Handle._run``'s (:func:`_report` does what it does with an exception). In debug mode the stock
    checks run on ``call_soon``/``call_at``; slow callbacks are not reported (virtual time stands still).
    """

    # base_events' private state this loop works on (typeshed does not declare it)
    _debug: bool
    _closed: bool
    _stopping: bool
    _ready: collections.deque[Any]
    _scheduled: list[Any]
    _timer_cancelled_count: int
    _thread_id: int | None  # the thread running the loop (run_forever), else None

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = [0.0]
        #: ``start`` + the loop's time, kept by ``_run_once`` whenever time moves (what
        #: ``VirtualClock.time`` reads, the same sum it computed per call).
        self._start = start
        self._wall_now = [start + 0.0]
        super().__init__(selector=_VirtualSelector(self._virtual_now))
        self._clock_resolution = 1e-9
        self.time = partial(getitem, self._virtual_now, 0)  # type: ignore[method-assign,assignment]
        #: ``self._debug`` read without a Python frame: every ``Future()`` asks its loop (C's future_init);
        #: ``True.__bool__`` or ``False.__bool__``, kept in step by ``set_debug``
        self.get_debug = bool(self._debug).__bool__  # type: ignore[method-assign]

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self.get_debug = bool(self._debug).__bool__  # type: ignore[method-assign]

    def time(self) -> float:  # replaced per instance by a C-level read (see __init__)
        return self._virtual_now[0]

    def call_soon(self, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_callback(callback, "call_soon")  # type: ignore[attr-defined]
            self._check_thread()  # type: ignore[attr-defined]
            handle: Any = asyncio.Handle(callback, args, self, context)  # the stock one records where from
        else:  # Handle.__init__'s non-debug body without its two frames (it asks get_debug())
            handle = _new(_Handle)
            handle._callback = callback
            handle._args = args
            handle._cancelled = False
            handle._loop = self
            handle._source_traceback = None
            handle._repr = None
            handle._context = _copy_context() if context is None else context
        self._ready.append(handle)
        return handle

    def soon_caller(self, callback: Callable[[], object], context: contextvars.Context) -> Callable[[], object]:
        """``partial(self.call_soon, callback, context=context)`` for a callback queued again and again
        (``MemoryHub._kick``): outside debug mode its handle is made once, here, and each call is the
        ready queue's C ``append`` of it (no frame, no handle). The callback checks it still has work."""
        if self._debug:  # the stock checks, and a handle per call that records where it was queued from
            return partial(self.call_soon, callback, context=context)
        return partial(self._ready.append, _Handle(callback, (), self, context))

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self._virtual_now[0] + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._debug:
            self._check_callback(callback, "call_at")  # type: ignore[attr-defined]
            self._check_thread()  # type: ignore[attr-defined]
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer: Any
        if self._debug:
            timer = asyncio.TimerHandle(when, callback, args, self, context)
        else:  # TimerHandle(...) without its three frames (its __init__, Handle's, get_debug), nor a call of ours
            timer = _new(_TimerHandle)
            timer._callback = callback
            timer._args = args
            timer._cancelled = False
            timer._loop = self
            timer._source_traceback = None
            timer._repr = None
            timer._context = _copy_context() if context is None else context
            timer._when = when
        entry = _Due(when)
        entry.handle = timer
        heappush(self._scheduled, entry)
        timer._scheduled = True
        return timer

    def _run_once(self) -> None:
        """base_events._run_once with the selector's wait replaced by a jump, repeated until the loop
        is stopping: ``run_forever`` does no more than call it again while ``_stopping`` is unset,
        so iterating here runs the same iterations in the same order, without a call and this
        method's set-up per iteration (a simulated day runs millions)."""
        ready = self._ready
        now = self._virtual_now
        wall_now, start = self._wall_now, self._start
        popleft = ready.popleft
        handle: Any = None
        args: Any = None
        instant: Any = None  # the reading (an object kept alive) wall_now and end_time were made from
        end_time = 0.0
        while True:
            scheduled = self._scheduled
            count = len(scheduled)
            if count > _MIN_SCHEDULED and self._timer_cancelled_count / count > _MIN_CANCELLED_FRACTION:
                kept = []
                for entry in scheduled:
                    if entry.handle._cancelled:
                        entry.handle._scheduled = False
                    else:
                        kept.append(entry)
                heapq.heapify(kept)
                self._scheduled = scheduled = kept
                self._timer_cancelled_count = 0
            else:
                while scheduled and scheduled[0].handle._cancelled:
                    self._timer_cancelled_count -= 1
                    heappop(scheduled).handle._scheduled = False
            if not ready and not self._stopping:
                if not scheduled:
                    raise VirtualClockStalled(_STALLED)
                # the stock loop's timeout arithmetic, min(max(0.0, gap), _MAX_JUMP) by comparisons (NaN
                # included) without two builtin calls: identical readings
                gap = scheduled[0] - now[0]
                now[0] += (gap if gap <= _MAX_JUMP else _MAX_JUMP) if gap > 0.0 else 0.0
            if now[0] is not instant:  # after a jump, or a test moved the reading (a stall)
                instant = now[0]
                wall_now[0] = start + instant
                end_time = instant + 1e-9
            while scheduled and scheduled[0] < end_time:
                handle = heappop(scheduled).handle
                handle._scheduled = False
                ready.append(handle)
            todo = len(ready)  # what these callbacks queue runs at the next iteration (a while: no range)
            while todo:
                todo -= 1
                handle = popleft()
                if handle._cancelled:
                    continue
                args = handle._args
                try:  # Handle._run's body, inlined: a frame less per callback; no *args tuple built for 0 or 1
                    if not args:
                        handle._context.run(handle._callback)
                    elif len(args) == 1:
                        handle._context.run(handle._callback, args[0])
                    else:
                        handle._context.run(handle._callback, *args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    if handle._context is not _WAKE_CONTEXT or exc.__class__ is not InvalidStateError:
                        _report(handle, exc)
                    # else a sleep's future was cancelled before its timer ran: _wake's "unless done"
            handle = args = None  # break a cycle through an exception's frames
            if self._stopping:
                return


def _report(handle: Any, exc: BaseException) -> None:
    """What Handle._run does with a callback's exception: the loop's exception handler gets it."""
    callback = format_helpers._format_callback_source(handle._callback, handle._args)
    context = {"message": f"Exception in callback {callback}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    handle._loop.call_exception_handler(context)


class _Due(float):
    """A timer's entry in the virtual loop's heap: its due time (``TimerHandle._when``), a float compared in C."""

    __slots__ = ("handle",)
    handle: asyncio.TimerHandle


# base_events' constants, named here (they are private there)
_MIN_SCHEDULED = 100
_MIN_CANCELLED_FRACTION = 0.5
_MAX_JUMP = 24 * 3600.0


def _wake(future: asyncio.Future[None]) -> None:
    """A sleep's timer callback in debug mode (the stock ``call_at``). Outside it the timer calls ``future.set_result``
    (C), and ``_run_once`` drops a cancelled future's ``InvalidStateError`` (the timer in ``_WAKE_CONTEXT``)."""
    if not future.done():  # asyncio.futures._set_result_unless_cancelled
        future.set_result(None)


#: Where a sleep's timer runs (``set_result``), not a copy per sleep (the task resumes in its own
#: context); it also marks a timer as a sleep's for ``_run_once``. ``_NONE``: the timer's args.
_WAKE_CONTEXT = contextvars.Context()
_NONE = (None,)
_Future, _Handle, _TimerHandle, _thread_ident = asyncio.Future, asyncio.Handle, asyncio.TimerHandle, threading.get_ident


class VirtualClock:
    """Deterministic simulated time on a private event loop.

    ``time()`` starts at ``start`` (default :data:`VIRTUAL_EPOCH`) and moves only when the loop
    has nothing ready, jumping to the next timer.
    """

    is_virtual = True

    def __init__(self, start: float = VIRTUAL_EPOCH) -> None:
        self.start = start  # read here only: the loop keeps start + its time
        self.loop = _VirtualEventLoop(start)
        # C-level reads of the loop's instants, no Python frame: the bus reads the clock per message.
        self.time = partial(getitem, self.loop._wall_now, 0)  # type: ignore[method-assign,assignment]
        self.monotonic = partial(getitem, self.loop._virtual_now, 0)  # type: ignore[method-assign,assignment]

    def time(self) -> float:  # replaced per instance (see __init__)
        return self.start + self.loop.time()

    def monotonic(self) -> float:  # replaced per instance (see __init__)
        return self.loop.time()

    @property
    def elapsed(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` on this loop, a frame shorter, the timer inline. 3.11's running-loop lookup
        (``Future()`` makes one) calls ``getpid()``: the loop is known running by its thread instead (no
        other loop runs in that thread meanwhile: ``get_running_loop() is loop``), the future given it."""
        loop = self.loop
        if seconds <= 0 or loop._thread_id != _thread_ident():
            await asyncio.sleep(seconds)
            return
        future: asyncio.Future[None] = _Future(loop=loop)
        when = loop._virtual_now[0] + seconds
        if loop._debug:
            timer: Any = loop.call_at(when, _wake, future)
        else:  # call_at's body, inlined (the loop is running, so not closed): a frame less per sleep
            timer = _new(_TimerHandle)
            timer._callback = future.set_result  # C; a cancelled future's error is dropped in _run_once
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
            if timer._scheduled:  # not fired (cancelled while asleep); a fired timer needs no cancel
                timer.cancel()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, callback, *args)

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on the virtual loop."""
        asyncio.set_event_loop(self.loop)
        try:
            return self.loop.run_until_complete(main)
        finally:
            asyncio.set_event_loop(None)

    def run_for(self, seconds: float, main: Awaitable[Any] | None = None) -> None:
        """Advance virtual time by ``seconds``, running everything scheduled meanwhile."""
        loop = self.loop
        stop_at = loop.time() + seconds

        async def _until() -> None:
            task = None if main is None else asyncio.ensure_future(main)
            await asyncio.sleep(max(0.0, stop_at - loop.time()))
            if task is not None and not task.done():
                task.cancel()

        self.run(_until())

    def close(self) -> None:
        """Cancel what is still pending (as ``asyncio.run`` does on exit), then close the loop."""
        loop = self.loop
        if loop.is_closed():
            return
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            asyncio.set_event_loop(loop)
            try:
                # Bounded in virtual time: a task that swallows its cancellation and sleeps on
                # would otherwise make virtual time run forever.
                loop.run_until_complete(asyncio.wait(pending, timeout=60.0))
            finally:
                asyncio.set_event_loop(None)
        loop.close()
