"""Supervision of one component instance: start, watch, restart with backoff, give up on a loop.

A crash is an exception from ``start``/``run`` or from a task the component spawned. The
supervisor stops the instance, waits the next delay of a :class:`~forge_core.tactics.Backoff`
(doubling per crash, capped at ``max_backoff``), builds a fresh instance and starts it again. More
than ``max_restarts`` crashes inside ``window`` seconds (a
:class:`~forge_core.tactics.CrashLoopWindow`) is a crash loop: the instance is marked ``failed``
and left stopped, and readiness turns false. The process runner uses the same two classes.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forge_core.components import Component, ComponentContext
from forge_core.tactics.retry import Backoff, CrashLoopWindow

if TYPE_CHECKING:
    from forge_core.clock import Clock

log = logging.getLogger("forge.runtime")

STARTING, RUNNING, RESTARTING, FAILED, STOPPED, KILLED = (
    "starting", "running", "restarting", "failed", "stopped", "killed")
#: The run ended while the instance was down after a crash, waiting out its backoff: a crash loop
#: the run was too short to see give up. Reported like FAILED (``forge run`` exits non-zero).
CRASHED = "crashed"


@dataclass
class RestartPolicy:
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_restarts: int = 5
    window: float = 60.0

    def backoff(self) -> Backoff:
        """The restart delays: ``initial_backoff``, doubling per crash, capped at ``max_backoff``."""
        return Backoff(self.initial_backoff, self.max_backoff, multiplier=2.0)

    def crash_window(self) -> CrashLoopWindow:
        """More than ``max_restarts`` crashes within ``window`` seconds is a crash loop."""
        return CrashLoopWindow(self.max_restarts, self.window)


def _forget_frames(exc: BaseException) -> None:
    """Clear the locals of the frames in ``exc``'s tracebacks (and of its causes), once it has been
    logged and reported: anything that keeps the exception (a log handler's records, a hook)
    would otherwise keep the crashed instance, its context and all it held. File and line stay."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__


class Supervisor:
    def __init__(
        self,
        name: str,
        factory: Callable[[ComponentContext], Component],
        make_context: Callable[[], ComponentContext],
        *,
        clock: Clock,
        policy: RestartPolicy,
        on_crash: Callable[[str, BaseException, int, bool], None],
    ) -> None:
        self.name = name
        self._factory = factory
        self._make_context = make_context
        self._clock = clock
        self.policy = policy
        self._on_crash = on_crash
        self.state = STARTING
        self.instance: Component | None = None
        self.context: ComponentContext | None = None
        self.restarts = 0
        self.kills = 0  # kill() calls (chaos); a revive after one is a restart the crash count does not see
        self.last_error: str | None = None
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped: asyncio.Future[None] | None = None  # see _stop_future
        self._crashes = policy.crash_window()
        self.task: asyncio.Task[None] | None = None

    def launch(self) -> asyncio.Task[None]:
        self.task = asyncio.ensure_future(self._supervise())
        self.task.set_name(f"supervise:{self.name}")
        return self.task

    async def _supervise(self) -> None:
        # made at the first crash of this run of the loop, not per life: a chaos day starts ~6,300 lives
        # (kills and revives) and few of them crash; a Backoff seeds a Random from os.urandom
        backoff: Backoff | None = None
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            ctx = self._make_context()
            ctx.failure = loop.create_future()
            self.context = ctx
            try:
                instance = self._factory(ctx)
                self.instance = instance
                # start() first: a handler must never run on a half-built component (a persistent
                # session delivers queued commands the moment it subscribes), nor before start()
                # gave the fence its keys (an unsigned command would pass unverified).
                await instance.start()
                await instance._subscribe_decorated()
                self.state = RUNNING
                self.started.set()
                # No task for a run() the component does not override (it returns at once): a chaos day
                # starts ~6,300 lives, and most components do their work in handlers and ctx.every.
                run = None if type(instance).run is Component.run else asyncio.ensure_future(instance.run())
                try:
                    await self._watch(run, ctx.failure, self._stop_future(loop))
                finally:  # also on cancellation (kill): nothing of this life may run on
                    if run is not None:
                        run.cancel()
                        await asyncio.gather(run, return_exceptions=True)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                in_window = self._crashes.record(self._clock.monotonic())
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                gave_up = self._crashes.looping
                if backoff is None:
                    backoff = self.policy.backoff()
                delay = 0.0 if gave_up else backoff.next()
                log.error("component %s crashed (%d in %.0fs window)%s: %s", self.name, in_window,
                          self.policy.window, "; giving up, crash loop" if gave_up else f"; restart in {delay:.1f}s",
                          self.last_error, exc_info=exc)
                await self._teardown()
                self._on_crash(self.name, exc, in_window, gave_up)
                _forget_frames(exc)
                del exc
                if gave_up:
                    self.state = FAILED
                    self.started.set()
                    return
                self.state = RESTARTING
                self.started.set()  # it did try; readiness reads the state
                try:
                    async with asyncio.timeout(delay):  # not wait_for: it can swallow a cancel
                        await self._stopping.wait()
                    return
                except TimeoutError:
                    pass

    def _stop_future(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """Resolved by :meth:`stop`; one for every life of this instance (a task waiting on the stop
        event per life cost a task, and its cancellation at every kill). Never cancelled by a life."""
        if self._stopped is None:
            self._stopped = loop.create_future()
            if self._stopping.is_set():
                self._stopped.set_result(None)
        return self._stopped

    @staticmethod
    async def _watch(run: asyncio.Future[None] | None, failure: asyncio.Future[BaseException],
                     stop_wait: asyncio.Future[Any]) -> None:
        """Return when asked to stop; raise what the component raised."""
        watched: set[asyncio.Future[object]] = {failure, stop_wait}  # type: ignore[arg-type]
        if run is not None:
            watched.add(run)  # type: ignore[arg-type]
        while True:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if failure in done:
                raise failure.result()
            if run is not None and run in done:
                watched.discard(run)
                run.result()  # raises if run() crashed; returning is fine
                continue
            if stop_wait in done:
                return

    async def kill(self) -> None:
        """Stop abruptly, as SIGKILL would: no ``stop()``, leases not released (they lapse),
        tasks and subscriptions gone. ``revive()`` starts a fresh instance."""
        self.state = KILLED
        self.kills += 1
        # Let go of the cancelled task: it keeps its CancelledError, whose traceback holds the frame
        # of _supervise and with it this life's instance and context, until the next revive.
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            del task
        ctx = self.context
        if ctx is not None:
            ctx._electors.clear()  # a dead process releases nothing
            await ctx._release(killed=True)
        self.instance = None
        self.context = None

    def revive(self) -> asyncio.Task[None]:
        """Start a killed instance again (a new life: fresh instance, new subscriptions)."""
        if self.state != KILLED:
            raise RuntimeError(f"component {self.name!r} is {self.state}, not killed")
        self.state = STARTING
        self.started = asyncio.Event()
        return self.launch()

    async def _teardown(self) -> None:
        instance, ctx = self.instance, self.context
        if instance is not None:
            if ctx is not None:
                await ctx._end_batches()  # routed nothing more; what they hold (a batch_wait window) is delivered
            try:
                await instance.stop()
            except Exception:
                log.exception("component %s failed while stopping", self.name)
        if ctx is not None:
            await ctx._release()
        self.instance = None
        self.context = None

    async def stop(self) -> None:
        down_after_crash = self.state == RESTARTING
        self._stopping.set()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.state == KILLED:
            return
        if self.state != FAILED:
            await self._teardown()
            self.state = CRASHED if down_after_crash else STOPPED
