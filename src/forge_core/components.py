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
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from forge_core.checks import Check
from forge_core.flows import Flow, Publishes, Subscribes, resolve
from forge_core.messages.envelope import Envelope
from forge_core.serving import GrpcHost, GrpcMounts, HttpHost, HttpMounts
from forge_core.settings import Settings
from forge_core.tactics.backpressure import BackpressureController
from forge_core.tactics.leader import FencedReceiver, LeaderElector, sign_payload

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.bus import BatchHandler, MessageBus
    from forge_core.clock import Clock
    from forge_core.plugins import Plugins
    from forge_core.tactics.service import Tactics
    from forge_core.transport.base import Subscription

F = TypeVar("F", bound=Callable[..., Any])

_SUBSCRIBE_ATTR = "__forge_subscriptions__"

#: Headers a leader's commands carry (``ctx.publish_fenced``): its lease epoch and lease name.
EPOCH_HEADER = "forgeepoch"
LEASE_HEADER = "forgelease"


def epoch_of(envelope: Envelope) -> int | None:
    """The fencing epoch of a command: the ``forgeepoch`` header, else a payload ``epoch`` field
    (plain JSON clients cannot send headers)."""
    text = envelope.headers.get(EPOCH_HEADER)
    if text is not None:
        try:
            return int(text)
        except ValueError:
            return None
    payload = envelope.payload
    if isinstance(payload, dict) and isinstance(payload.get("epoch"), int):
        return int(payload["epoch"])
    return None


@dataclass(frozen=True)
class SubscriptionSpec:
    pattern: str
    types: tuple[str, ...] | None
    transport: str | None
    shared: bool
    fenced: bool | str = False
    batch: bool = False


def subscribe(pattern: str, *, types: list[str] | tuple[str, ...] | None = None, transport: str | None = None,
              shared: bool = True, fenced: bool | str = False, batch: bool = False) -> Callable[[F], F]:
    """Mark a method as the handler of messages on ``pattern`` (``+``/``#`` wildcards).

    ``types`` keeps only those message types. ``transport`` picks a transport other than the
    component's own. ``shared``: replicas of one component share the messages (each message to
    one replica), as a consumer group; ``False`` gives every replica every message.
    ``fenced``: the messages are a leader's commands; one stamped with an epoch older than the
    newest seen (or with none) is dropped and counted, never handled (see ``ctx.fence``). Give
    the lease name (``fenced="scheduler"``) to also refuse commands stamped for another lease;
    ``True`` takes the lease from each command's ``forgelease`` header. Once the component gives
    the lease a key (``ctx.fence.keys[lease] = key``; the leader's ``ctx.publish_fenced`` then
    signs with it), a command must also carry the holder's signature in its ``signature`` body
    field (``forge_core.tactics.sign_payload``); an unsigned or badly signed one is dropped and
    counted in ``ctx.fence.forged`` and leaves the fence alone.
    ``batch``: the method takes a list of envelopes, what the transport received together (see
    ``MessageBus.subscribe``); for high-rate streams, where a call per message costs too much.
    """
    if batch and fenced:
        raise ValueError(f"subscribe({pattern!r}): a batch handler cannot be fenced (fencing judges each "
                         f"command on its own); subscribe the commands without batch=True")

    def mark(method: F) -> F:
        specs = list(getattr(method, _SUBSCRIBE_ATTR, []))
        specs.append(SubscriptionSpec(pattern, tuple(types) if types else None, transport, shared, fenced, batch))
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

    async def publish_batch(self, topic: str, type_: str, payloads: Sequence[Any], *,
                            keys: Sequence[str | None] | None = None, headers: dict[str, str] | None = None,
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
                             key: str | None = None, headers: dict[str, str] | None = None,
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

    async def _release(self) -> None:
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
        for sub in self._subscriptions:
            try:
                await sub.cancel()
            except Exception:  # the transport may already be closed
                logging.getLogger("forge.runtime").debug("cancel failed", exc_info=True)
        self._subscriptions.clear()


#: Methods of :class:`Component` the runtime calls: name -> whether it must be ``async def``.
_RUNTIME_HOOKS = {"start": True, "run": True, "stop": True, "report": False, "checks": False, "health": False}


def _hook_problem(method: Any, want_async: bool) -> str | None:
    if isinstance(method, staticmethod | classmethod | property):
        return f"is a {type(method).__name__}, not a method"
    if not callable(method):
        return f"is a {type(method).__name__} attribute, not a method"
    is_async = inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)
    if is_async and not want_async:
        return "is `async def`, but the runtime calls it without awaiting"
    if want_async and not is_async:
        return "is a plain `def`, but the runtime awaits it"
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    required = [p.name for p in parameters if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        return f"takes required arguments ({', '.join(required)}), but the runtime passes none"
    return None


class Component:
    """Base class of plant components.

    Override what you need: ``start`` (subscribe, spawn loops), ``run`` (a long-running
    coroutine; returning is fine), ``stop`` (clean up; called on shutdown and before a
    restart). Methods decorated with :func:`subscribe` are subscribed once ``start`` has returned,
    so no handler runs on a half-built instance.
    """

    #: The params declaration: a :class:`~forge_core.settings.Settings` model. ``forge validate``
    #: checks the manifest against its schema and ``self.params`` is an instance, defaults filled.
    Params: ClassVar[type[Settings] | None] = None
    #: Or a plain JSON Schema of ``params``; ``self.params`` is then a dict with its defaults filled.
    params_schema: ClassVar[dict[str, Any] | None] = None
    #: What this component publishes: :class:`~forge_core.flows.Publishes` (types and topic) or bare
    #: type names; ``forge validate`` checks each type is registered (as it checks the ``types`` of
    #: every ``@subscribe``), ``forge asyncapi`` documents the topics. See :mod:`forge_core.flows`.
    publishes: ClassVar[tuple[str | Publishes, ...]] = ()
    #: The subscriptions ``start`` makes (``@subscribe`` handlers need no entry): ``Subscribes(...)``.
    subscribes: ClassVar[tuple[Subscribes, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, at class definition, an override of a runtime hook that the runtime cannot call.

        ``report``, ``checks`` and ``health`` are called synchronously by the runtime (summary,
        ``/health``) and ``start``, ``run``, ``stop`` are awaited; an ``async def report`` written
        as a new method of one's own would otherwise surface only after the run, as a traceback.
        """
        super().__init_subclass__(**kwargs)
        for name, want_async in _RUNTIME_HOOKS.items():
            method = cls.__dict__.get(name)
            if method is None:
                continue
            problem = _hook_problem(method, want_async)
            if problem is not None:
                base = "async def" if want_async else "def"
                raise TypeError(
                    f"{cls.__module__}.{cls.__qualname__}.{name}: {problem}; {name!r} is a hook the runtime calls "
                    f"(`{base} {name}(self)`, see forge_core.Component). Override it with that signature, or give "
                    f"your own method another name")
        if isinstance(cls.__dict__.get("publishes"), str | list):
            raise TypeError(f"{cls.__module__}.{cls.__qualname__}.publishes: a tuple of message type names, "
                            f"e.g. publishes = ({cls.__dict__['publishes']!r},)"
                            if isinstance(cls.__dict__["publishes"], str) else
                            f"{cls.__module__}.{cls.__qualname__}.publishes: a tuple, not a list")
        for attr, kind in (("publishes", (str, Publishes)), ("subscribes", (Subscribes,))):
            declared = cls.__dict__.get(attr, ())
            wrong = [item for item in declared if not isinstance(item, kind)] if isinstance(declared, tuple) else \
                [declared]
            if wrong:
                names = " or ".join(k.__name__ for k in kind)
                raise TypeError(f"{cls.__module__}.{cls.__qualname__}.{attr}: a tuple of {names}, got {wrong[0]!r}")

    @classmethod
    def published_types(cls) -> list[str]:
        """Every message type ``publishes`` names."""
        return [t for item in cls.publishes for t in ((item,) if isinstance(item, str) else item.types)]

    @classmethod
    def flows(cls, params: Any) -> list[Flow]:
        """The flows of an instance configured with ``params`` (the built params: a Settings object
        or a dict): ``publishes``, ``subscribes`` and ``@subscribe`` handlers, resolved. Override
        (extending ``super().flows(params)``) when topics are computed from params."""
        found: list[Flow] = []
        for index, item in enumerate(cls.publishes):
            if isinstance(item, Publishes):
                found.extend(resolve(item, params, origin=f"publishes[{index}]"))
        for index, sub in enumerate(cls.subscribes):
            found.extend(resolve(sub, params, origin=f"subscribes[{index}]"))
        for attr in dir(cls):
            for spec in getattr(getattr(cls, attr, None), _SUBSCRIBE_ATTR, ()):
                found.append(Flow("receive", spec.pattern, spec.types or (), spec.transport, shared=spec.shared,
                                  origin=f"@subscribe on {attr}()"))
        return found

    @classmethod
    def uses_transports(cls, params: dict[str, Any], declared: Iterable[str]) -> set[str]:
        """Transports this component needs besides its own, so ``--only`` connects them too.

        Default: every top-level param whose value names a declared transport (a bridge's
        ``mqtt: mqtt, kafka: kafka``). Override for anything subtler."""
        names = set(declared)
        return {value for value in params.values() if isinstance(value, str) and value in names}

    def __init__(self, ctx: ComponentContext) -> None:
        self.ctx = ctx
        self.params = ctx.params

    @property
    def name(self) -> str:
        return self.ctx.name

    async def start(self) -> None:
        """Called once per (re)start, before decorated handlers are subscribed (they see its state)."""

    async def run(self) -> None:
        """Long-running work; the default does nothing."""

    async def stop(self) -> None:
        """Called on shutdown and before a restart."""

    def health(self) -> dict[str, Any]:
        """Extra detail for ``/health``; override to report component state."""
        return {}

    def report(self) -> dict[str, Any]:
        """What this component has to say in the run summary (``forge run`` prints it)."""
        return {}

    def checks(self) -> list[Check]:
        """Invariants checked over the run, for the summary; a failed one fails ``forge run``."""
        return []

    async def _subscribe_decorated(self) -> None:
        for attr, spec in _decorated(type(self)):
            await self.ctx.subscribe(spec.pattern, getattr(self, attr), types=spec.types,
                                     transport=spec.transport, shared=spec.shared, fenced=spec.fenced,
                                     batch=spec.batch)


#: A class's @subscribe methods, found once: scanning dir() of the class on every start cost more than
#: the rest of a restart's bookkeeping (a chaos day starts ~6,300 lives). Weak: test classes come and go.
_DECORATED: weakref.WeakKeyDictionary[type, list[tuple[str, SubscriptionSpec]]] = weakref.WeakKeyDictionary()


def _decorated(cls: type) -> list[tuple[str, SubscriptionSpec]]:
    found = _DECORATED.get(cls)
    if found is None:
        found = [(attr, spec) for attr in dir(cls)
                 for spec in getattr(getattr(cls, attr, None), _SUBSCRIBE_ATTR, ())]
        _DECORATED[cls] = found
    return found
