"""Supervision of one component instance: start, watch, restart with backoff, give up on a loop.

A crash is an exception from ``start``/``run`` or from a task the component spawned. The
supervisor stops the instance, waits a backoff that doubles per crash (capped), builds a fresh
instance and starts it again. More than ``max_restarts`` crashes inside ``window`` seconds is a
crash loop: the instance is marked ``failed`` and left stopped, and readiness turns false.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forge_core.components import Component, ComponentContext

if TYPE_CHECKING:
    from forge_core.clock import Clock

log = logging.getLogger("forge.runtime")

STARTING, RUNNING, RESTARTING, FAILED, STOPPED = "starting", "running", "restarting", "failed", "stopped"


@dataclass
class RestartPolicy:
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_restarts: int = 5
    window: float = 60.0


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
        self.last_error: str | None = None
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()
        self._crash_times: deque[float] = deque()
        self.task: asyncio.Task[None] | None = None

    def launch(self) -> asyncio.Task[None]:
        self.task = asyncio.ensure_future(self._supervise())
        self.task.set_name(f"supervise:{self.name}")
        return self.task

    async def _supervise(self) -> None:
        backoff = self.policy.initial_backoff
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            ctx = self._make_context()
            ctx.failure = loop.create_future()
            self.context = ctx
            try:
                instance = self._factory(ctx)
                self.instance = instance
                await instance._subscribe_decorated()
                await instance.start()
                self.state = RUNNING
                self.started.set()
                run = asyncio.ensure_future(instance.run())
                stop_wait = asyncio.ensure_future(self._stopping.wait())
                watched: set[asyncio.Future[object]] = {run, ctx.failure, stop_wait}  # type: ignore[arg-type]
                pending_run = True
                while True:
                    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                    if ctx.failure in done:
                        raise ctx.failure.result()
                    if run in done and pending_run:
                        pending_run = False
                        watched.discard(run)
                        run.result()  # raises if run() crashed; returning is fine
                        continue
                    if stop_wait in done:
                        break
                run.cancel()
                stop_wait.cancel()
                await asyncio.gather(run, return_exceptions=True)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = self._clock.monotonic()
                self._crash_times.append(now)
                while self._crash_times and now - self._crash_times[0] > self.policy.window:
                    self._crash_times.popleft()
                self.restarts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                gave_up = len(self._crash_times) > self.policy.max_restarts
                log.error("component %s crashed (%d in %.0fs window)%s: %s", self.name, len(self._crash_times),
                          self.policy.window, "; giving up, crash loop" if gave_up else f"; restart in {backoff:.1f}s",
                          self.last_error, exc_info=exc)
                await self._teardown()
                self._on_crash(self.name, exc, len(self._crash_times), gave_up)
                if gave_up:
                    self.state = FAILED
                    self.started.set()
                    return
                self.state = RESTARTING
                self.started.set()  # it did try; readiness reads the state
                try:
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                    return
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, self.policy.max_backoff)

    async def _teardown(self) -> None:
        instance, ctx = self.instance, self.context
        if instance is not None:
            try:
                await instance.stop()
            except Exception:
                log.exception("component %s failed while stopping", self.name)
        if ctx is not None:
            await ctx._release()
        self.instance = None
        self.context = None

    async def stop(self) -> None:
        self._stopping.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.state != FAILED:
            await self._teardown()
            self.state = STOPPED
