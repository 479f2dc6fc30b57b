"""Injected time: every timeout, interval and lease in Forge reads a :class:`Clock`.

``RealClock`` runs on the normal asyncio event loop. ``VirtualClock`` owns an event loop whose
time is virtual: when nothing is ready to run, the loop jumps straight to the next timer instead
of sleeping. All asyncio primitives (``asyncio.sleep``, ``wait_for``, ``call_later``) then run
in virtual time, so a plant day passes in seconds and, with no threads and no real I/O, the
same seed gives the same order of events.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

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

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.new_event_loop()

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(main)


class _VirtualSelector(selectors.BaseSelector):
    """A selector that never waits: a wait of ``timeout`` advances virtual time instead.

    The loop registers its self-pipe here; nothing is ever reported ready, which is fine for a
    single-threaded simulation (``call_soon_threadsafe`` from other threads is not supported).
    """

    def __init__(self, loop_time: list[float]) -> None:
        self._now = loop_time
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, _fd(fileobj), events, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise VirtualClockStalled(
                "virtual clock stalled: nothing is scheduled and nothing is ready; "
                "a simulated run needs a deadline (run_until/advance) to end"
            )
        if timeout > 0:
            self._now[0] += timeout
        return []

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Any:
        return dict(self._keys)


def _fd(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


class VirtualClockStalled(RuntimeError):
    """The virtual loop had nothing to do and no timer to jump to."""


class _VirtualEventLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = [0.0]
        super().__init__(selector=_VirtualSelector(self._virtual_now))
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._virtual_now[0]


class VirtualClock:
    """Deterministic simulated time on a private event loop.

    ``time()`` starts at ``start`` (default :data:`VIRTUAL_EPOCH`) and moves only when the loop
    has nothing ready, jumping to the next timer.
    """

    is_virtual = True

    def __init__(self, start: float = VIRTUAL_EPOCH) -> None:
        self.start = start
        self.loop = _VirtualEventLoop()

    def time(self) -> float:
        return self.start + self.loop.time()

    def monotonic(self) -> float:
        return self.loop.time()

    @property
    def elapsed(self) -> float:
        return self.loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

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
            if main is not None:
                task = asyncio.ensure_future(main)
                await asyncio.sleep(max(0.0, stop_at - loop.time()))
                if not task.done():
                    task.cancel()
            else:
                await asyncio.sleep(max(0.0, stop_at - loop.time()))

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
