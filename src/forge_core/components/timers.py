"""Periodic work on the loop's timer callbacks instead of a task: :class:`PeriodicTimer` (``ctx.timer``),
:class:`EveryTimer` (``ctx.every`` of a sync function) and :func:`publish_soon` (``ctx.publish_soon``).

A task that sleeps between two calls pays, per call, the sleep's future and timer, the task's wake-up and its
coroutine resumed; a timer callback pays the timer and the call. What a callback cannot do is await, so a
publish is started by hand, its coroutine's first ``send``: on the in-memory transport (every simulated plant)
it finishes there, without a task; one that suspends (a broker's flow control, a reconnect) is finished in a
task of the component. The first step runs outside any task: a transport whose ``publish`` needs the current
task before its first suspension (``asyncio.timeout``) would not work here; the bundled ones do not.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, TypeVar

from forge_core.errors import TransportError

if TYPE_CHECKING:
    from forge_core.components.context import ComponentContext
    from forge_core.messages.envelope import Envelope

T = TypeVar("T")

#: What a timer's callback returns: ``None`` (the next call one interval later), the next delay in seconds,
#: or an awaitable, awaited in a task of the component, whose result (``None`` or a delay) times the next call.
Next = float | None | Awaitable[float | None]

Spawn = Callable[..., "asyncio.Task[Any]"]


def _ended() -> None:
    """An ended timer's ``fn`` and callback (never called: its handle is cancelled)."""


async def _raise(exc: BaseException) -> None:
    raise exc


class PeriodicTimer:
    """Calls ``fn()`` on a timer callback of the running loop, again and again (see ``ComponentContext.timer``).

    ``fn`` is what the next due time calls: a first call may replace it (e.g. with a closure binding what
    later calls read). An exception from ``fn`` (or from an awaitable it returned) ends the timer and
    crashes the component as a task's would; ``cancel()`` ends it too, from ``fn`` or from outside.
    """

    __slots__ = ("_again", "_cancelled", "_forget", "_handle", "_spawn", "_task", "call_at", "fn", "interval", "name",
                 "now")

    def __init__(self, fn: Callable[[], Next], interval: float, first: float, *, spawn: Spawn, name: str,
                 forget: Callable[[PeriodicTimer], object] = lambda timer: None) -> None:
        loop = asyncio.get_running_loop()
        self.fn, self.interval, self.name = fn, interval, name
        self.call_at, self.now = loop.call_at, loop.time  # per call: no frame of call_later's
        self._again = self._fire  # bound once, not per call
        self._spawn = spawn
        self._forget = forget  # called once the timer has ended (its owner stops holding it)
        self._task: asyncio.Task[Any] | None = None  # the awaitable fn returned, while it runs
        self._cancelled = False
        self._handle = self.call_at(self.now() + first, self._again)  # the last one (cancelling a fired one: no-op)

    def _fire(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:
            self._crash(exc)
            return
        if self._cancelled:  # fn cancelled the timer
            return
        if isinstance(result, float):
            self._handle = self.call_at(self.now() + result, self._again)
        elif result is None:
            self._handle = self.call_at(self.now() + self.interval, self._again)
        elif isinstance(result, int):  # not a float to isinstance(), though one to the type checker
            self._handle = self.call_at(self.now() + result, self._again)
        else:
            self._task = self._spawn(self._after(result), name=self.name)

    async def _after(self, pending: Awaitable[float | None]) -> None:
        delay = await pending
        self._task = None
        if not self._cancelled:
            self._handle = self.call_at(self.now() + (self.interval if delay is None else delay), self._again)

    def _crash(self, exc: Exception) -> None:
        """End the timer; ``exc`` goes to a task of the component: it crashes, as with a task's error."""
        self._end()
        self._spawn(_raise(exc), name=f"{self.name}:error")

    def cancel(self) -> None:
        """No more calls; an awaitable the last call returned is cancelled unless it is the caller."""
        self._end()
        self._handle.cancel()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _end(self) -> None:
        self._cancelled = True
        self._forget(self)
        # its own bound method is a cycle (as is ``fn`` of an owner holding the timer) reaching the component's
        # context through ``spawn``: without them an ended life's context is freed at once, not by the collector
        self._again = self.fn = _ended

    def cancelled(self) -> bool:
        return self._cancelled


class EveryTimer(PeriodicTimer):
    """``ComponentContext.every`` on a timer callback, for a sync ``fn``: the next call ``interval`` seconds after
    this one's end, or after the end of the awaitable it returned (awaited in a task of the component). What
    else it returns is ignored, as ``every``'s task ignored it (no delay read from it)."""

    __slots__ = ()

    # PeriodicTimer._fire's call, crash and cancel check repeated, not shared through a method the base would
    # call with the result: that call per fire cost 0.28 % of industry40's simulated hour (cachegrind, 8863eec)
    def _fire(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:
            self._crash(exc)
            return
        if self._cancelled:  # fn cancelled the timer
            return
        if result is None or not isawaitable(result):
            self._handle = self.call_at(self.now() + self.interval, self._again)
        else:
            self._task = self._spawn(self._after(result), name=self.name)

    async def _after(self, pending: Awaitable[Any]) -> None:
        await pending
        self._task = None
        if not self._cancelled:
            self._handle = self.call_at(self.now() + self.interval, self._again)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Await the rest of ``coro``, whose first step (run by hand) yielded ``pending``: what it yields goes to
    the task, what the task sends or throws (a cancellation) goes back to it."""
    while True:
        try:
            sent = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown into the awaiting task (a cancellation): the coroutine's to handle
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                pending = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Coroutine[Any, Any, T], pending: Any, payload: Any, on_published: Callable[[T], object] | None,
                  on_failed: Callable[[TransportError, Any], object] | None) -> None:
    try:
        done = await _resume(coro, pending)
    except TransportError as exc:
        if on_failed is None:
            raise
        on_failed(exc, payload)
    else:
        if on_published is not None:
            on_published(done)


def publish_soon(ctx: ComponentContext, topic: str, type_: str, payload: Any, *, key: str | None = None,
                 headers: dict[str, str] | None = None, transport: str | None = None,
                 on_published: Callable[[Envelope], object] | None = None,
                 on_failed: Callable[[TransportError, Any], object] | None = None) -> asyncio.Task[None] | None:
    """Publish from sync code (a :meth:`timer`'s callback): :meth:`publish` run at once up to where it would
    wait. ``None`` if it ended there (always on the in-memory transport), with ``on_published(envelope)`` or
    ``on_failed(error, payload)`` (a ``TransportError``) called; else the task of the component that finishes
    it and calls them. With no ``on_failed`` the error is raised, or crashes the component."""
    publishing = ctx.publish(topic, type_, payload, key=key, headers=headers, transport=transport)
    try:  # its first step: on the in-memory transport, the whole publish
        pending = publishing.send(None)
    except StopIteration as done:
        if on_published is not None:
            on_published(done.value)
        return None
    except TransportError as exc:
        if on_failed is None:
            raise
        on_failed(exc, payload)
        return None
    return ctx.spawn(_finish(publishing, pending, payload, on_published, on_failed), name=f"publish:{topic}")


def run_soon(ctx: ComponentContext, coro: Coroutine[Any, Any, None], *, name: str = "") -> asyncio.Task[None] | None:
    """Run ``coro`` from sync code (a :meth:`timer`'s callback) at once up to where it would wait: ``None`` if it
    ended there, else the task of the component that finishes it (return it from the timer's ``fn`` to time
    the next call after it; cancelling that task cancels ``coro``). An error of its first step is raised to
    the caller, a later one crashes the component."""
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return ctx.spawn(_rest(coro, pending), name=name or getattr(coro, "__qualname__", "run_soon"))


async def _rest(coro: Coroutine[Any, Any, None], pending: Any) -> None:
    await _resume(coro, pending)
