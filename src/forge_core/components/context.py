"""What the runtime gives a component instance: :class:`ComponentContext`."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from forge_core.components.periodic import periodic, sleeps_on_running_loop
from forge_core.components.subscriptions import EPOCH_HEADER, LEASE_HEADER, epoch_of
from forge_core.components.timers import EveryTimer, Next, PeriodicTimer, publish_soon, run_soon
from forge_core.messages.envelope import Envelope
from forge_core.serving import GrpcHost, GrpcMounts, HttpHost, HttpMounts
from forge_core.tactics.backpressure import BackpressureController
from forge_core.tactics.leader import FencedReceiver, LeaderElector, sign_payload

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.bus import BatchHandler, MessageBus
    from forge_core.clock import Clock
    from forge_core.plugins import Plugins
    from forge_core.tactics.service import Tactics
    from forge_core.transport.base import Subscription

#: seconds a subscription's flush at stop may take (the Kafka transport's cancel waits as long)
FLUSH_TIMEOUT = 30.0


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
        params: Any,
        bus: MessageBus,
        clock: Clock,
        transport: str | None,
        seed: int | None,
        storage: Callable[[], Engine] | None = None,
        tactics: Tactics | None = None,
        plugins: Plugins | None = None,
        services: dict[str, Any] | None = None,
        http: HttpHost | None = None,
        grpc: GrpcHost | None = None,
    ) -> None:
        self.name = name
        self.component = component
        self.replica = replica
        self.replicas = replicas
        self.params = params
        self.bus = bus
        self.clock = clock
        self.transport = transport
        self._tactics = tactics
        self.plugins = plugins
        self.services = services or {}
        self._http_host, self._grpc_host = http, grpc
        #: Receiver-side fencing for ``fenced`` subscriptions: newest epoch per lease, counts.
        self.fence = FencedReceiver()
        self.unfenced_rejected = 0
        self._electors: list[LeaderElector] = []
        self._seed = seed
        self._random: random.Random | None = None  # see random
        self.log = logging.getLogger(f"forge.component.{name}")
        self._storage = storage
        self._subscriptions: list[Subscription] = []
        #: The batch subscriptions among them: ended before the component's ``stop()`` (see _end_batches).
        self._batches: list[Subscription] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[PeriodicTimer] = set()  # the live ones: an ended timer forgets itself
        self._at_end: list[tuple[str, Callable[[], object]]] = []
        self.failure: asyncio.Future[BaseException] | None = None

    @property
    def random(self) -> random.Random:
        """Seeded per instance: the same seed gives every component the same random stream. Made at
        the first read (the same stream: seeding reads nothing else), not per life: a chaos day starts
        ~6,300 lives, and seeding from the text was ~5 % of a kill and revive."""
        rng = self._random
        if rng is None:
            seed = self._seed
            rng = self._random = random.Random(f"{seed}:{self.name}") if seed is not None else random.Random()
        return rng

    @random.setter
    def random(self, rng: random.Random) -> None:
        self._random = rng

    # -- messaging -----------------------------------------------------------------------
    def publish(self, topic: str, type_: str, payload: Any, *, key: str | None = None,
                headers: Mapping[str, str] | None = None,
                transport: str | None = None) -> Coroutine[Any, Any, Envelope]:
        """Validate and publish a message with this instance as its source (``await`` it): the bus's
        ``publish`` coroutine itself, not one of ours around it (a coroutine less per message)."""
        return self.bus.publish(topic, type_, payload, self.name, key, headers, transport or self.transport)

    async def publish_batch(self, topic: str, type_: str, payloads: Sequence[Any], *,
                            keys: Sequence[str | None] | None = None, headers: Mapping[str, str] | None = None,
                            transport: str | None = None) -> list[Envelope]:
        """Validate and publish many messages of one type at once (all or none; see
        ``MessageBus.publish_batch``), with this instance as their source."""
        return await self.bus.publish_batch(topic, type_, payloads, source=self.name, keys=keys, headers=headers,
                                            transport=transport or self.transport)

    async def subscribe(self, pattern: str, handler: Callable[[Envelope], Awaitable[None] | None] | BatchHandler, *,
                        types: list[str] | tuple[str, ...] | None = None, transport: str | None = None,
                        shared: bool = True, fenced: bool | str = False, batch: bool = False,
                        group: str | None = None) -> Subscription:
        """Subscribe ``handler``; cancelled automatically when the component stops or crashes.
        ``batch=True``: ``handler`` takes a list of envelopes (``MessageBus.subscribe``).
        ``group``: share the messages in this consumer group instead of the component's own (its
        name, when it has several replicas); every subscriber that names the group shares them, even
        one replica alone or instances of different components (Kafka's ``group_template`` makes the
        group id of it, so a plant can name the group operators see, e.g. ``sensor-processors``)."""
        if batch and fenced:
            raise ValueError(f"{self.name}: subscribe({pattern!r}) cannot be both batch and fenced")
        if group is not None:
            if not shared:
                raise ValueError(f"{self.name}: subscribe({pattern!r}) with group {group!r} is shared; "
                                 f"drop shared=False or the group")
            if not group.strip():
                raise ValueError(f"{self.name}: subscribe({pattern!r}): the group name is empty")
        else:
            group = self.component if shared and self.replicas > 1 else None
        if fenced:
            handler = self._fenced(handler, fenced if isinstance(fenced, str) else None)  # type: ignore[arg-type]
        sub = await self.bus.subscribe(pattern, handler, owner=self.name, transport=transport or self.transport,
                                       group=group, types=types, batch=batch)
        self._subscriptions.append(sub)
        if batch:
            self._batches.append(sub)
        return sub

    def _fenced(self, handler: Callable[[Envelope], Awaitable[None] | None],
                lease: str | None) -> Callable[[Envelope], Any]:
        async def guard(envelope: Envelope) -> None:
            epoch = epoch_of(envelope)
            stamped = envelope.headers.get(LEASE_HEADER)
            if epoch is None or (lease is not None and stamped is not None and stamped != lease):
                self.unfenced_rejected += 1
                self.log.warning("dropped %s on %s: a fenced command needs an epoch of lease %r", envelope.type,
                                 envelope.topic, lease or stamped or "default")
                return
            name = lease or stamped or "default"
            forged = self.fence.forged
            if not self.fence.accept_payload(epoch, name, envelope.payload):  # signed if the lease has a key
                if self.fence.forged > forged:
                    self.log.warning("dropped %s on %s with epoch %d: not signed by the holder of lease %r",
                                     envelope.type, envelope.topic, epoch, name)
                else:
                    self.log.info("dropped %s with stale epoch %d (newest %s)", envelope.type, epoch,
                                  self.fence.newest.get(name))
                return
            result = handler(envelope)
            if inspect.isawaitable(result):
                await result

        return guard

    # -- tactics -------------------------------------------------------------------------
    @property
    def tactics(self) -> Tactics:
        """The plant's configured tactics (``tactics:`` in the manifest)."""
        if self._tactics is None:
            raise RuntimeError(f"{self.name}: this runtime has no tactics configured")
        return self._tactics

    def elector(self, lease: str, *, on_elected: Callable[[int], Any] | None = None,
                on_deposed: Callable[[int], Any] | None = None, **overrides: Any) -> LeaderElector:
        """Campaign for ``lease`` as this instance, for as long as the component runs.

        ``on_elected(epoch)`` / ``on_deposed(epoch)`` (sync or async) run after the
        ``forge_leadership_changed`` hook. The lease is released on stop, so a successor takes
        over at once. ``overrides`` replace ``tactics.leader`` settings (ttl, renew_every, ...).
        """
        plugins = self.plugins

        def reacting(leading: bool, user: Callable[[int], Any] | None) -> Callable[[int], Awaitable[None]]:
            async def react(epoch: int) -> None:
                if plugins is not None:
                    plugins.leadership_changed(lease, self.name, epoch, leading)
                await self._announce_leadership(lease, epoch, leading)
                if user is not None:
                    result = user(epoch)
                    if inspect.isawaitable(result):
                        await result

            return react

        elector = self.tactics.elector(lease, self.name, **overrides)
        elector.on_elected = reacting(True, on_elected)
        elector.on_deposed = reacting(False, on_deposed)
        self._electors.append(elector)
        if elector.answers_at_once and sleeps_on_running_loop(self.clock):  # no task wake-up per renewal
            elector.run_on_timer(self.timer)
        else:
            self.spawn(elector.run(), name=f"elector:{lease}")
        return elector

    def backpressure(self, on_change: Callable[[float, float, int], None] | None = None,
                     **overrides: Any) -> BackpressureController:
        """A queue-depth controller for this component (``tactics.backpressure`` settings); each
        switch calls ``forge_backpressure_changed`` and then ``on_change(old, new, depth)``."""
        plugins = self.plugins

        def changed(old: float, new: float, depth: int) -> None:
            self.log.info("backpressure: sampling %.2fs -> %.2fs at queue depth %d", old, new, depth)
            if plugins is not None:
                plugins.backpressure_changed(self.name, old, new, depth)
            if on_change is not None:
                on_change(old, new, depth)

        return self.tactics.backpressure(changed, **overrides)

    async def _announce_leadership(self, lease: str, epoch: int, leading: bool) -> None:
        """``forge.leadership`` on ``forge/leader/<lease>``: watchers follow leaders without polling."""
        try:
            await self.publish(f"forge/leader/{lease}", "forge.leadership",
                               {"lease": lease, "holder": self.name, "epoch": epoch, "leading": leading}, key=lease)
        except Exception as exc:  # shutting down, transport gone: the election itself must go on
            self.log.info("could not announce leadership of %s (epoch %d): %s", lease, epoch, exc)

    async def publish_fenced(self, elector: LeaderElector, topic: str, type_: str, payload: Any, *,
                             key: str | None = None, headers: Mapping[str, str] | None = None,
                             transport: str | None = None) -> Envelope:
        """Publish a leader's command stamped with its epoch; raises NotLeader when not leading.
        When the lease has a key (``ctx.fence.keys``), a JSON object payload is signed with it
        (``signature`` field, ``forge_core.tactics.sign_payload``): receivers with the key need it."""
        epoch = elector.fence()
        plant_key = self.fence.keys.get(elector.name)
        if plant_key is not None and isinstance(payload, Mapping):
            payload = sign_payload(plant_key, elector.name, epoch, payload)
        stamped = {**(headers or {}), EPOCH_HEADER: str(epoch), LEASE_HEADER: elector.name}
        return await self.publish(topic, type_, payload, key=key, headers=stamped, transport=transport)

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
              initial_delay: float | None = None) -> asyncio.Task[Any] | PeriodicTimer:
        """Call ``fn`` every ``interval`` seconds of the clock (first after ``initial_delay``,
        default one interval, then ``interval`` after each call's end; an awaitable it returns is awaited
        first). A call that raises crashes the component; the calls end with this life.

        A sync ``fn`` is called on a timer callback of the loop (an :class:`EveryTimer`, as :meth:`timer`),
        a coroutine function in a task that sleeps between calls (returned), as is any ``fn`` on a clock
        whose sleep is not a timer of the running loop."""
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be positive, got {interval}")

        first = interval if initial_delay is None else initial_delay
        name = name or getattr(fn, "__name__", "every")
        if inspect.iscoroutinefunction(fn) or not sleeps_on_running_loop(self.clock):
            return self.spawn(periodic(self.clock, interval, first, fn), name=name)
        timer = EveryTimer(fn, interval, first, spawn=self.spawn, name=name, forget=self._timers.discard)
        self._timers.add(timer)
        return timer

    def timer(self, interval: float, fn: Callable[[], Next], *, name: str = "",
              initial_delay: float | None = None) -> PeriodicTimer:
        """Call ``fn`` (sync) on a timer callback of the loop, not in a task: first after ``initial_delay``
        (default one interval), then ``interval`` seconds after each call, or the delay it returns, or after
        the awaitable it returns (awaited in a task of the component; its result is ``None`` or the delay).
        A call that raises crashes the component; ``cancel()`` ends the timer, as does the end of this life.
        Publish from ``fn`` with :meth:`publish_soon`."""
        if interval <= 0:
            raise ValueError(f"{self.name}: interval must be positive, got {interval}")
        first = interval if initial_delay is None else initial_delay
        timer = PeriodicTimer(fn, interval, first, spawn=self.spawn, name=name or getattr(fn, "__name__", "timer"),
                              forget=self._timers.discard)
        self._timers.add(timer)
        return timer

    publish_soon = publish_soon  # a method defined beside the timers (forge_core.components.timers)
    run_soon = run_soon  # the same for any coroutine

    def at_end(self, fn: Callable[[], object], *, name: str = "") -> None:
        """Call ``fn()`` when this life of the component ends, however it ends: stopped (after ``stop()``),
        crashed, or killed (no ``stop()`` then, as under SIGKILL). For what a kill must not leak: a kept
        connection given back to its pool, an open transaction committed (every write a real process
        handled before its SIGKILL was committed). Called once the component's tasks are cancelled, the
        last registered first; an exception is logged, naming the component and ``name``, not raised."""
        self._at_end.append((name or getattr(fn, "__qualname__", repr(fn)), fn))

    def _run_at_end(self) -> None:
        while self._at_end:
            name, fn = self._at_end.pop()
            try:
                fn()
            except Exception:  # the life is over either way: the rest must still run
                self.log.exception("%s: %s failed at the end of its life", self.name, name)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self.failure is not None and not self.failure.done():
            self.failure.set_result(error)

    # -- serving -----------------------------------------------------------------------
    @property
    def http(self) -> HttpMounts:
        """The process's HTTP server: ``await ctx.http.mount("/orders", asgi_app)``; unmounted when
        this component stops. See docs/runtime.md#serving-http-and-grpc."""
        if self._http_host is None:
            raise RuntimeError(f"{self.name}: this runtime serves no HTTP")
        return HttpMounts(self._http_host, self.name)

    @property
    def grpc(self) -> GrpcMounts:
        """The process's gRPC server: ``await ctx.grpc.add(add_XServicer_to_server, servicer, "pkg.X")``;
        its services go NOT_SERVING when this component stops."""
        if self._grpc_host is None:
            raise RuntimeError(f"{self.name}: this runtime serves no gRPC")
        return GrpcMounts(self._grpc_host, self.name)

    @property
    def storage(self) -> Engine:
        """The plant's SQLAlchemy engine (created on first use)."""
        if self._storage is None:
            raise RuntimeError(f"{self.name}: this runtime has no storage configured")
        return self._storage()

    async def _end_batches(self) -> None:
        """End each batch subscription before the component's ``stop()`` (the supervisor calls this):
        its ``cancel()`` routes it no more messages, hands over what the transport holds back (the
        in-memory transport's ``batch_wait`` window) and returns once that has been delivered, so no
        batch handler call begins once ``stop()`` has begun. Each is bounded by :data:`FLUSH_TIMEOUT`
        (a handler that never returns must not hold the stop forever); past it the subscription is
        logged as an error and abandoned, as a kill ends it. Per-message subscriptions deliver on
        while ``stop()`` runs and are cancelled after it (``_release``)."""
        batches, self._batches = self._batches, []
        for sub in batches:
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
            try:
                await asyncio.wait_for(sub.cancel(), FLUSH_TIMEOUT)
            except TimeoutError:
                logging.getLogger("forge.runtime").error(
                    "component %s: subscription %r did not deliver what it held back within %gs at stop; "
                    "it is ended as a kill would end it, and what it still holds is dropped",
                    self.name, sub.pattern, FLUSH_TIMEOUT)
                try:
                    await sub.abandon()
                except Exception:  # the transport may already be closed
                    logging.getLogger("forge.runtime").debug("abandon failed", exc_info=True)
            except Exception:  # the transport may already be closed
                logging.getLogger("forge.runtime").debug("cancel failed", exc_info=True)

    async def _release(self, *, killed: bool = False) -> None:
        for timer in list(self._timers):  # no call once the life ends, nor while its tasks are cancelled
            timer.cancel()
        if self._http_host is not None:
            self._http_host.release(self.name)
        if self._grpc_host is not None:
            await self._grpc_host.release(self.name)
        for elector in self._electors:
            try:
                await elector.release()
            except Exception:  # releasing is a courtesy; the lease expires anyway
                logging.getLogger("forge.runtime").warning("%s: releasing lease %s failed", self.name, elector.name,
                                                           exc_info=True)
        self._electors.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._run_at_end()
        for sub in self._subscriptions:
            try:
                await (sub.abandon() if killed else sub.cancel())  # a dead process is handed nothing more
            except Exception:  # the transport may already be closed
                logging.getLogger("forge.runtime").debug("cancel failed", exc_info=True)
        self._subscriptions.clear()
        self._batches.clear()
