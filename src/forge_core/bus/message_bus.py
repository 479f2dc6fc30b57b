"""The bus's sending half and its wiring: transports, ``publish``/``publish_batch``/``send`` (envelope,
id, time, trace context, the schema check) and ``subscribe``/routes; the receiving half is
:class:`~forge_core.bus.delivery.Delivery`, its base class."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

from forge_core.bus.delivery import BatchHandler, Delivery, Handler
from forge_core.bus.stats import BusStats, Route, TraceRecorder, TypeSlot
from forge_core.errors import ForgeError, MessageRejected, UnknownMessageType
from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter, DeadLetterChannel
from forge_core.messages.envelope import NO_HEADERS, Envelope, IdGenerator
from forge_core.messages.schemas import ErrorDetail, InvalidPayload, SchemaRegistry
from forge_core.transport.base import Subscription, Transport
from forge_core.transport.codec import Decoder, TypeBinding
from forge_core.transport.hops import cross

if TYPE_CHECKING:
    from forge_core.clock import Clock
    from forge_core.telemetry import Telemetry

log = logging.getLogger("forge.bus")

_new_envelope = object.__new__  # an Envelope without its __init__ (publish)


def _bad_key(type_: str, source: str, key: object) -> TypeError:
    """A key that is not a str nor None, refused before anything is sent: as a compiled bus's argument check does."""
    return TypeError(f"{type_!r} from {source!r}: a message key is a str or None, not {type(key).__name__} ({key!r})")


class MessageBus(Delivery):
    def __init__(
        self,
        *,
        schemas: SchemaRegistry,
        clock: Clock,
        transports: dict[str, Transport] | None = None,
        default_transport: str | None = None,
        bindings: Sequence[TypeBinding] = (),
        dead_letters: DeadLetterChannel | None = None,
        telemetry: Telemetry | None = None,
        ids: IdGenerator | None = None,
        infer_type: Callable[[str, Any], str | None] | None = None,
        trace: TraceRecorder | None = None,
    ) -> None:
        self.schemas = schemas
        self.clock = clock
        self.transports: dict[str, Transport] = dict(transports or {})
        self._default_target: Transport | None = None  # the default transport, once looked up (publish)
        self.default_transport = default_transport or next(iter(self.transports), None)
        self.dead_letters = dead_letters or DeadLetterChannel()
        self.telemetry = telemetry if telemetry is not None and telemetry.enabled else None
        self.ids = ids or IdGenerator()
        # Bound once for publish's hot path (each saves an attribute lookup or a Python frame).
        # An id is built inline in publish (IdGenerator: prefix + str(next(counter))), faster than any call.
        self._id_prefix, self._id_counter = self.ids.prefix, self.ids.counter
        self._time = clock.time
        self.trace = trace
        self.stats = BusStats()
        self._slots = self.stats._slots  # type -> TypeSlot, bound for publish's hot path
        self._decoders: dict[str, Decoder] = {}
        self._bindings = list(bindings)
        self._infer = infer_type
        self._route_subs: list[Subscription] = []

    # -- transports ----------------------------------------------------------------------
    @property
    def default_transport(self) -> str | None:
        """The transport ``publish`` uses when it names none."""
        return self._default_name

    @default_transport.setter
    def default_transport(self, name: str | None) -> None:
        self._default_name = name
        self._default_target = None  # looked up again by the next publish

    def add_transport(self, transport: Transport) -> None:
        """Add (or replace) a transport; change ``transports`` through this, not directly, as
        ``publish`` keeps the default one at hand."""
        self.transports[transport.name] = transport
        self._default_target = None
        if self.default_transport is None:
            self.default_transport = transport.name

    def transport(self, name: str | None = None) -> Transport:
        name = name or self.default_transport or ""
        try:
            return self.transports[name]
        except KeyError:
            known = ", ".join(self.transports) or "none"
            raise ForgeError(f"no transport named {name!r} in this plant; declared: {known}") from None

    def _add_slot(self, type_: str) -> TypeSlot:
        """``type_``'s slot for publish (its check and version from the registry, which never
        replaces a registered type); raises UnknownMessageType for a type not registered."""
        entry = self.schemas.fast_entry(type_)
        if entry is None:  # (raised while publish handles a KeyError: not its cause)
            raise UnknownMessageType(type_, [s.type for s in self.schemas]) from None
        slot = self.stats._slots[type_] = [entry[0], entry[1], 0]
        return slot

    # -- publishing ----------------------------------------------------------------------
    def build(self, type_: str, payload: Any, *, source: str, key: str | None = None,
              headers: Mapping[str, str] | None = None, topic: str = "", transport: str = "") -> Envelope:
        """Validate ``payload`` and wrap it in an envelope; raise MessageRejected if invalid
        (dead-lettered with ``topic`` and ``transport``, where it was going)."""
        entry = self.schemas.fast_entry(type_)
        if entry is None:
            raise UnknownMessageType(type_, [s.type for s in self.schemas])
        check, version = entry
        try:
            check(payload)
        except InvalidPayload:
            errors = self.schemas.errors(type_, payload)
            letter = DeadLetter(dl.INVALID, f"{source} published an invalid {type_!r}", topic, transport,
                                self.clock.time(), errors, source,
                                Envelope(type_, payload, source, self.ids(), self.clock.time(), key))
            self.dead_letters.put(letter)
            raise MessageRejected(
                f"{type_!r} from {source!r}{f' on {topic!r}' if topic else ''} does not match its schema: "
                + "; ".join(f"{e['pointer']}: {e['message']}" for e in errors),
                errors=errors,
            ) from None
        return Envelope(type_, payload, source, self.ids(), self.clock.time(), key, version,
                        dict(headers) if headers else {})

    async def publish(
        self,
        topic: str,
        type_: str,
        payload: Any,
        source: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: str | None = None,
    ) -> Envelope:
        """Validate and send a message; returns the envelope that was sent.

        Pass ``source`` and what follows it by keyword: they are not keyword-only only because a
        keyword-only parameter's default costs a dict lookup per call, and this runs per message."""
        if key is not None and not isinstance(key, str):
            raise _bad_key(type_, source, key)  # what the compiled publish's argument check raises (TypeError)
        try:
            slot = self._slots[type_]
        except KeyError:
            slot = self._add_slot(type_)  # the type's first message here (or UnknownMessageType)
        if headers is not None and headers:
            envelope = self.build(type_, payload, source=source, key=key, headers=headers, topic=topic,
                                  transport=transport or self.default_transport or "")
            envelope.topic = topic  # as below: the memory hub's path below queues it as it is
        else:  # build()'s good path, inlined: a call less per message
            check, version, _ = slot
            try:
                check(payload)
            except InvalidPayload:  # build() says why, dead-letters it and raises MessageRejected
                self.build(type_, payload, source=source, key=key, topic=topic,
                           transport=transport or self.default_transport or "")
                raise
            # Envelope(type_, payload, source, id, time, key, version, {}, topic) without its __init__: calling
            # a class with a Python __init__ goes through type_call and a new interpreter frame, ~1,000
            # machine instructions a message; every field is set here (tests/bus: test_publish_sets_every_field).
            # The topic is set here, not by the transport: the memory hub then finds it set.
            envelope = _new_envelope(Envelope)
            envelope.type = type_
            envelope.payload = payload
            envelope.source = source
            envelope.id = self._id_prefix + str(next(self._id_counter))
            now = self._time  # read, then called: ``self._time()`` is a method lookup 3.11 cannot specialise
            envelope.time = now()
            envelope.key = key
            envelope.schema_version = version
            envelope.headers = NO_HEADERS  # shared, read-only (telemetry gives it a dict of its own below)
            envelope.topic = topic
        # The body of send(), inlined: one coroutine less per message on the hot path.
        if transport is None:
            target = self._default_target
            if target is None:
                target = self._default_target = self.transport(None)
        else:  # a component's publish names its transport: the dict's lookup, no call (transport() on a miss)
            target = self.transports.get(transport) if transport else None
            if target is None:
                target = self.transport(transport)
        slot[2] += 1  # BusStats.published: a list item's += 1 costs a third of a Counter's
        if self.trace is not None:
            self.trace.record(topic, envelope)
        if self.telemetry is not None:
            await self._publish_traced(topic, envelope, target)
        elif (hub := target.memory_hub) is not None:
            # MemoryHub.put's body, inlined (a call was ~500 instructions a message): the route cached
            # per topic, queued as the bare envelope (its topic is set); groups and faults go through
            # the hub's _route_out.
            try:
                subs, slow = hub._route_cache[topic]
            except KeyError:
                subs, slow = hub._routes(topic)
            hub.published += 1
            if not slow:
                for sub in subs:
                    sub.queue.append(envelope)
                    if not sub.draining:
                        hub._wake(sub)
            elif subs:
                hub._route_out(topic, envelope, subs, slow)
        elif (direct := target.direct_publish) is not None:
            # a transport that seldom waits: no coroutine unless it has to (Transport.direct_publish)
            if (pending := direct(topic, envelope)) is not None:
                await pending
        else:
            await target.publish(topic, envelope)
        return envelope

    async def publish_batch(
        self,
        topic: str,
        type_: str,
        payloads: Sequence[Any],
        *,
        source: str,
        keys: Sequence[str | None] | None = None,
        headers: Mapping[str, str] | None = None,
        transport: str | None = None,
    ) -> list[Envelope]:
        """Validate and send many messages of one type from one source, in order; returns their
        envelopes. ``keys[i]`` is message i's key (partitioning; ``None``: the source).

        All or nothing: every payload is validated before any is sent, and if one is invalid
        nothing is sent, each invalid one is dead-lettered and :class:`MessageRejected` names
        them by index. The batch shares one time stamp (the moment of the call). The transport
        gets the whole list at once (:meth:`Transport.publish_batch`), which on Kafka costs
        about half of what ``publish`` per message does (docs/performance.md).
        """
        if keys is not None:
            for key in keys:
                if key is not None and not isinstance(key, str):
                    raise _bad_key(type_, source, key)
        entry = self.schemas.fast_entry(type_)
        if entry is None:
            raise UnknownMessageType(type_, [s.type for s in self.schemas])
        if keys is not None and len(keys) != len(payloads):
            raise ValueError(f"publish_batch of {type_!r} from {source!r}: {len(keys)} keys for "
                             f"{len(payloads)} payloads")
        check, version = entry
        invalid: list[int] = []
        for index, payload in enumerate(payloads):
            try:
                check(payload)
            except InvalidPayload:
                invalid.append(index)
        if invalid:
            self._reject_batch(type_, payloads, invalid, source, keys)
        now, ids = self.clock.time(), self.ids.many(len(payloads))
        if headers:
            envelopes = [Envelope(type_, payload, source, id_, now, key, version, dict(headers))
                         for payload, id_, key in zip(payloads, ids, keys or repeat(None), strict=False)]
        elif keys is None:
            envelopes = [Envelope(type_, payload, source, id_, now, None, version, {})
                         for payload, id_ in zip(payloads, ids, strict=True)]
        else:
            envelopes = [Envelope(type_, payload, source, id_, now, key, version, {})
                         for payload, id_, key in zip(payloads, ids, keys, strict=True)]
        if not envelopes:
            return envelopes
        target = self.transport(transport)
        self.stats._published[type_] += len(envelopes)
        if self.trace is not None:
            for envelope in envelopes:
                self.trace.record(topic, envelope)
        if self.telemetry is None:
            await target.publish_batch(topic, envelopes)
        else:
            await self._publish_batch_traced(topic, type_, envelopes, target)
        # Let the loop run what waits (this process's handlers) before the caller's next batch: a
        # transport that takes a batch without waiting (Kafka) would otherwise starve them.
        await asyncio.sleep(0)
        return envelopes

    def _reject_batch(self, type_: str, payloads: Sequence[Any], invalid: list[int], source: str,
                      keys: Sequence[str | None] | None) -> None:
        problems: list[ErrorDetail] = []
        for index in invalid:
            errors = self.schemas.errors(type_, payloads[index])
            key = keys[index] if keys is not None else None
            self.dead_letters.put(DeadLetter(
                dl.INVALID, f"{source} published an invalid {type_!r} (item {index} of a batch)", "", "",
                self.clock.time(), errors, source,
                Envelope(type_, payloads[index], source, self.ids(), self.clock.time(), key)))
            problems += [{"pointer": f"[{index}]{e['pointer']}", "message": e["message"]} for e in errors]
        raise MessageRejected(
            f"batch of {len(payloads)} {type_!r} from {source!r}: {len(invalid)} invalid, none sent: "
            + "; ".join(f"{e['pointer']}: {e['message']}" for e in problems[:10])
            + (f"; ... {len(problems) - 10} more" if len(problems) > 10 else ""),
            errors=problems,
        )

    async def send(self, topic: str, envelope: Envelope, *, transport: str | None = None) -> None:
        """Send an already validated envelope (forwarding, replay)."""
        target = self.transport(transport)
        self.stats._published[envelope.type] += 1
        if self.trace is not None:
            self.trace.record(topic, envelope)
        if self.telemetry is None:
            await target.publish(topic, envelope)
        else:
            await self._publish_traced(topic, envelope, target)

    async def _publish_traced(self, topic: str, envelope: Envelope, target: Transport) -> None:
        telemetry = self.telemetry
        assert telemetry is not None
        with telemetry.tracer.start_as_current_span(
            f"publish {envelope.type}", attributes={"messaging.destination.name": topic,
                                                    "messaging.system": target.type_name,
                                                    "messaging.message.id": envelope.id},
        ):
            if envelope.headers is NO_HEADERS:  # shared and read-only (publish, a decoder): a dict of its own
                envelope.headers = {}
            telemetry.inject(envelope.headers)
            await target.publish(topic, envelope)
        telemetry.messages_published.add(1, {"type": envelope.type})

    async def _publish_batch_traced(self, topic: str, type_: str, envelopes: list[Envelope],
                                    target: Transport) -> None:
        telemetry = self.telemetry
        assert telemetry is not None
        with telemetry.tracer.start_as_current_span(
            f"publish {type_}", attributes={"messaging.destination.name": topic,
                                            "messaging.system": target.type_name,
                                            "messaging.batch.message_count": len(envelopes)},
        ):
            for envelope in envelopes:  # one span for the batch; each message links back to it
                telemetry.inject(envelope.headers)
            await target.publish_batch(topic, envelopes)
        telemetry.messages_published.add(len(envelopes), {"type": type_})

    # -- subscribing ---------------------------------------------------------------------
    async def subscribe(
        self,
        pattern: str,
        handler: Handler | BatchHandler,
        *,
        owner: str,
        transport: str | None = None,
        group: str | None = None,
        types: Sequence[str] | None = None,
        batch: bool = False,
    ) -> Subscription:
        """Call ``handler(envelope)`` for every valid message matching ``pattern``.

        ``types`` narrows to message types (others are skipped, not dead-lettered: they are
        someone else's). The handler may be sync or async.

        ``batch=True``: call ``handler(envelopes)`` with a list instead, the valid messages of
        what the transport received together (:meth:`Transport.subscribe_batch`; Kafka: up to
        ``batch_size`` records of one topic, other transports: one). Invalid ones are
        dead-lettered and left out as usual; if the handler raises, every message of the list
        is dead-lettered (``handler_error``), as a failing single handler's message is, and the
        transport acknowledges it (on Kafka: its offsets are committed).

        A handler that raises :class:`~forge_core.errors.Redeliver` is the exception: nothing is
        dead-lettered, the exception goes to the transport, which does not acknowledge the
        message (batch) and delivers it again (Kafka: until a delivery returns; see Redeliver).
        """
        source = self.transport(transport)
        wanted = set(types) if types else None
        if batch:
            batch_callback = self._make_batch_callback(cast(BatchHandler, handler), owner, source, wanted)
            return await source.subscribe_batch(pattern, batch_callback, group=group, owner=owner)
        callback = self._make_callback(cast(Handler, handler), owner, source, wanted)
        return await source.subscribe(pattern, callback, group=group, owner=owner)

    # -- routes --------------------------------------------------------------------------
    async def add_route(self, route: Route) -> None:
        """Forward matching messages from ``route.source`` to ``route.target``.

        Each forwarded envelope carries a ``forgehops`` header listing the transports it
        crossed (:func:`cross`), so two routes in opposite directions never loop a message.
        """
        allowed = set(route.types) if route.types else None
        target = route.target

        async def forward(envelope: Envelope) -> None:
            copy = cross(envelope, route.source, target)
            if copy is None:
                return
            if allowed is not None and envelope.type not in allowed:
                self.stats.refused += 1
                return
            await self.send(envelope.topic, copy, transport=target)
            self.stats.forwarded += 1

        for pattern in route.topics:
            sub = await self.subscribe(pattern, forward, owner=f"route:{route.source}->{target}",
                                       transport=route.source)
            self._route_subs.append(sub)
