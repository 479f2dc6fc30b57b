"""Components: units of plant behaviour (a machine, a scheduler, a monitor, a bridge).

Write a subclass of :class:`Component`, mark handler methods with :func:`subscribe`, do
periodic work with ``self.ctx.every(...)``, and register the class through the
``forge_register_components`` hook. The runtime creates one instance per replica, starts it,
supervises it (restart with backoff on a crash) and stops it.

Everything a component needs from the outside comes through its :class:`ComponentContext`:
the clock (never ``time.time()``), a seeded RNG, publishing, storage, logging.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from forge_core.messages.envelope import Envelope

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.bus import MessageBus
    from forge_core.clock import Clock
    from forge_core.transport.base import Subscription

F = TypeVar("F", bound=Callable[..., Any])

_SUBSCRIBE_ATTR = "__forge_subscriptions__"


@dataclass(frozen=True)
class SubscriptionSpec:
    pattern: str
    types: tuple[str, ...] | None
    transport: str | None
    shared: bool


def subscribe(pattern: str, *, types: list[str] | tuple[str, ...] | None = None, transport: str | None = None,
              shared: bool = True) -> Callable[[F], F]:
    """Mark a method as the handler of messages on ``pattern`` (``+``/``#`` wildcards).

    ``types`` keeps only those message types. ``transport`` picks a transport other than the
    component's own. ``shared``: replicas of one component share the messages (each message to
    one replica), as a consumer group; ``False`` gives every replica every message.
    """

    def mark(method: F) -> F:
        specs = list(getattr(method, _SUBSCRIBE_ATTR, []))
        specs.append(SubscriptionSpec(pattern, tuple(types) if types else None, transport, shared))
        setattr(method, _SUBSCRIBE_ATTR, specs)
        return method

    return mark


class ComponentFailed(Exception):
    """Raised inside the supervisor when a background task of a component crashed."""


class ComponentContext:
    """What the runtime gives a component instance."""

    def __init__(
        self,
        *,
        name: str,
        component: str,
        replica: int,
        replicas: int,
        params: dict[str, Any],
        bus: MessageBus,
        clock: Clock,
        transport: str | None,
        seed: int | None,
        storage: Callable[[], Engine] | None = None,
        tactics: dict[str, Any] | None = None,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.component = component
        self.replica = replica
        self.replicas = replicas
        self.params = params
        self.bus = bus
        self.clock = clock
        self.transport = transport
        self.tactics = tactics or {}
        self.services = services or {}
        #: Seeded per instance: the same seed gives every component the same random stream.
        self.random = random.Random(f"{seed}:{name}") if seed is not None else random.Random()
        self.log = logging.getLogger(f"forge.component.{name}")
        self._storage = storage
        self._subscriptions: list[Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.failure: asyncio.Future[BaseException] | None = None

    # -- messaging -----------------------------------------------------------------------
    async def publish(self, topic: str, type_: str, payload: Any, *, key: str | None = None,
                      headers: dict[str, str] | None = None, transport: str | None = None) -> Envelope:
        """Validate and publish a message with this instance as its source."""
        return await self.bus.publish(topic, type_, payload, source=self.name, key=key, headers=headers,
                                      transport=transport or self.transport)

    async def subscribe(self, pattern: str, handler: Callable[[Envelope], Awaitable[None] | None], *,
                        types: list[str] | tuple[str, ...] | None = None, transport: str | None = None,
                        shared: bool = True) -> Subscription:
        """Subscribe ``handler``; cancelled automatically when the component stops or crashes."""
        group = self.component if shared and self.replicas > 1 else None
        sub = await self.bus.subscribe(pattern, handler, owner=self.name, transport=transport or self.transport,
                                       group=group, types=types)
        self._subscriptions.append(sub)
        return sub

    # -- background work -----------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any], *, name: str = "") -> asyncio.Task[Any]:
        """Run ``coro`` as part of this component: if it raises, the component has crashed."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def every(self, interval: float, fn: Callable[[], Awaitable[None] | None], *, name: str = "",
              initial_delay: float | None = None) -> asyncio.Task[Any]:
        """Call ``fn`` every ``interval`` seconds of the clock (first after ``initial_delay``,
        default one interval). A call that raises crashes the component."""
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be positive, got {interval}")

        async def loop() -> None:
            await self.clock.sleep(interval if initial_delay is None else initial_delay)
            while True:
                result = fn()
                if inspect.isawaitable(result):
                    await result
                await self.clock.sleep(interval)

        return self.spawn(loop(), name=name or getattr(fn, "__name__", "every"))

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.failure is not None and not self.failure.done():
            self.failure.set_result(error)

    @property
    def storage(self) -> Engine:
        """The plant's SQLAlchemy engine (created on first use)."""
        if self._storage is None:
            raise RuntimeError(f"{self.name}: this runtime has no storage configured")
        return self._storage()

    async def _release(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for sub in self._subscriptions:
            try:
                await sub.cancel()
            except Exception:  # the transport may already be closed
                logging.getLogger("forge.runtime").debug("cancel failed", exc_info=True)
        self._subscriptions.clear()


class Component:
    """Base class of plant components.

    Override what you need: ``start`` (subscribe, spawn loops), ``run`` (a long-running
    coroutine; returning is fine), ``stop`` (clean up; called on shutdown and before a
    restart). Methods decorated with :func:`subscribe` are subscribed before ``start``.
    """

    #: JSON Schema of ``params`` in the manifest; validated by ``forge validate``.
    params_schema: ClassVar[dict[str, Any] | None] = None

    def __init__(self, ctx: ComponentContext) -> None:
        self.ctx = ctx
        self.params = ctx.params

    @property
    def name(self) -> str:
        return self.ctx.name

    async def start(self) -> None:
        """Called once per (re)start, after decorated handlers are subscribed."""

    async def run(self) -> None:
        """Long-running work; the default does nothing."""

    async def stop(self) -> None:
        """Called on shutdown and before a restart."""

    def health(self) -> dict[str, Any]:
        """Extra detail for ``/health``; override to report component state."""
        return {}

    async def _subscribe_decorated(self) -> None:
        for attr in dir(type(self)):
            method = getattr(type(self), attr, None)
            for spec in getattr(method, _SUBSCRIBE_ATTR, ()):
                await self.ctx.subscribe(spec.pattern, getattr(self, attr), types=spec.types,
                                         transport=spec.transport, shared=spec.shared)
