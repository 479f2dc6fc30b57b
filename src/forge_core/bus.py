"""The message bus: the one edge where messages enter and leave a plant process.

Outgoing: ``publish`` builds the envelope (id, time, source, trace context), validates the
payload against its type's schema and hands it to the transport. Incoming: bytes from network
transports are decoded (CloudEvents binary mode or a plain JSON body typed by the manifest's
bindings) and validated before any handler sees them. Whatever fails goes to the dead-letter
channel with the reason; a handler that raises sends its message there too.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any, cast

import orjson

from forge_core.errors import DecodeError, ForgeError, MessageRejected, Redeliver, UnknownMessageType
from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter, DeadLetterChannel
from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage
from forge_core.messages.schemas import ErrorDetail, InvalidPayload, SchemaRegistry
from forge_core.transport.base import DirectCallback, DirectRun, QueueEntry, Subscription, Transport
from forge_core.transport.codec import Decoder, TypeBinding, is_structured
from forge_core.transport.hops import cross

if TYPE_CHECKING:
    from forge_core.clock import Clock
    from forge_core.telemetry import Telemetry

log = logging.getLogger("forge.bus")

Handler = Callable[[Envelope], Awaitable[None] | None]
BatchHandler = Callable[[list[Envelope]], Awaitable[None] | None]


@dataclass
class Route:
    """Forward messages from one transport to another (``routes:`` in the manifest)."""

    source: str
    target: str
    topics: list[str]
    types: list[str] | None = None


class Tally(Counter[str]):
    """A :class:`~collections.Counter` whose ``tally[key] += 1`` costs what a dict's does.

    Counter defines ``__delitem__`` in Python (a missing key is no error), which makes CPython
    route every item assignment through a Python-level slot: ~2.5x a dict's ``+= 1``, paid per
    message by the bus. Here ``del`` is dict's again (a missing key raises KeyError); everything
    else is Counter's.
    """

    __delitem__ = dict.__delitem__  # type: ignore[assignment]  # dict's own (the point)


#: What ``MessageBus.publish`` keeps per message type: ``[compiled check, schema version, published]``.
TypeSlot = list[Any]


@dataclass
class BusStats:
    #: Messages handled per type (exact when read by any other task than a handler in the middle of
    #: an in-memory delivery run: see MessageBus._make_direct_run).
    handled: Counter[str] = field(default_factory=Tally)
    forwarded: int = 0
    refused: int = 0
    #: Deliveries whose handler raised :class:`Redeliver`: handed back to the transport, not dead-lettered.
    redeliver: int = 0
    #: Sent by publish_batch and send; publish counts in its type's slot.
    _published: Counter[str] = field(default_factory=Tally, repr=False)
    _slots: dict[str, TypeSlot] = field(default_factory=dict, repr=False)

    @property
    def published(self) -> Counter[str]:
        """Messages sent per type: a new count, exact when read."""
        counts = Tally(self._published)
        for type_, slot in self._slots.items():
            if slot[2]:
                counts[type_] += slot[2]
        return counts


class TraceRecorder:
    """An ordered record of every message published, hashed as it goes.

    Two runs of the same manifest with the same seed under the virtual clock give the same
    digest; that is how determinism is proved.
    """

    def __init__(self, keep: int = 0) -> None:
        self._hash = hashlib.sha256()
        self.count = 0
        self.keep = keep
        self.events: list[tuple[float, str, str, str, str]] = []

    def record(self, topic: str, env: Envelope) -> None:
        self.count += 1
        line = orjson.dumps([round(env.time, 6), topic, env.type, env.source, env.id, env.key, env.payload],
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        self._hash.update(line)
        self._hash.update(b"\n")
        if len(self.events) < self.keep:
            self.events.append((env.time, topic, env.type, env.source, env.id))

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


class MessageBus:
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

    def _decoder(self, transport: Transport) -> Decoder:
        decoder = self._decoders.get(transport.name)
        if decoder is None:
            decoder = Decoder(self._bindings, prefix=getattr(transport, "header_prefix", "ce_"), ids=self.ids,
                              clock_time=self.clock.time, infer_type=self._infer)
            self._decoders[transport.name] = decoder
        return decoder

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
              headers: dict[str, str] | None = None, topic: str = "", transport: str = "") -> Envelope:
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
        *,
        source: str,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        transport: str | None = None,
    ) -> Envelope:
        """Validate and send a message; returns the envelope that was sent."""
        try:
            slot = self._slots[type_]
        except KeyError:
            slot = self._add_slot(type_)  # the type's first message here (or UnknownMessageType)
        if headers:
            envelope = self.build(type_, payload, source=source, key=key, headers=headers, topic=topic,
                                  transport=transport or self.default_transport or "")
        else:  # build()'s good path, inlined: a call less per message
            check, version, _ = slot
            try:
                check(payload)
            except InvalidPayload:  # build() says why, dead-letters it and raises MessageRejected
                self.build(type_, payload, source=source, key=key, topic=topic,
                           transport=transport or self.default_transport or "")
                raise
            # the topic set here, not by the transport: the memory hub's put then finds it set (a store less)
            envelope = Envelope(type_, payload, source, self._id_prefix + str(next(self._id_counter)), self._time(),
                                key, version, {}, topic)
        # The body of send(), inlined: one coroutine less per message on the hot path.
        target = self._default_target if transport is None else None
        if target is None:
            target = self.transport(transport)
            if transport is None:
                self._default_target = target
        slot[2] += 1  # BusStats.published: a list item's += 1 costs a third of a Counter's
        if self.trace is not None:
            self.trace.record(topic, envelope)
        if self.telemetry is not None:
            await self._publish_traced(topic, envelope, target)
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
        headers: dict[str, str] | None = None,
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

    def _make_batch_callback(self, handler: BatchHandler, owner: str, transport: Transport,
                             types: set[str] | None) -> Callable[[str, list[Envelope | RawMessage]], Awaitable[None]]:
        handled = self.stats.handled
        tname = transport.name
        admit = self._admit
        fast_entry = self.schemas.fast_entry

        async def on_batch(topic: str, messages: list[Envelope | RawMessage]) -> None:
            envelopes: list[Envelope] = []
            add = envelopes.append
            decode_structured = self._decoder(transport).decode_structured
            last_headers: object = None
            structured = bare = False
            for message in messages:
                if isinstance(message, Envelope):
                    envelope = message
                else:
                    verdict: Envelope | bool | None = message.verdict
                    if verdict is None:
                        # _admit's good path for a structured event, inlined (per message it is most of
                        # the cost). Anything else, and whatever fails, goes through _admit itself,
                        # which decodes every form and says in the dead letter what is wrong.
                        headers = message.headers
                        if headers is not last_headers:  # transports share one dict between like records
                            last_headers, structured = headers, bool(headers) and is_structured(headers)
                            bare = not headers
                        # a structured event marked by its content type, or without headers at all (Kafka's
                        # default between Forge processes) one whose body starts as Forge's encoders write it
                        if structured or (bare and message.body.startswith(b'{"specversion"')):
                            decoded = decode_structured(topic, message.body)
                            if decoded is not None:
                                entry = fast_entry(decoded.type)
                                if entry is not None and entry[1] == decoded.schema_version:
                                    try:
                                        entry[0](decoded.payload)
                                        verdict = decoded
                                    except InvalidPayload:
                                        pass
                        if verdict is None:
                            verdict = admit(topic, message, transport, owner) or False
                        message.verdict = verdict
                    if not isinstance(verdict, Envelope):
                        continue
                    envelope = verdict
                if types is None or envelope.type in types:
                    add(envelope)
            if not envelopes:
                return
            if self.telemetry is not None:
                await self._handle_traced(handler, envelopes, envelopes, topic, owner, tname)
                return
            try:
                await _call(handler, envelopes)
            except asyncio.CancelledError:
                raise
            except Redeliver:
                self.stats.redeliver += 1
                raise
            except Exception as exc:
                self._batch_failed(envelopes, topic, tname, owner, exc)
                return
            _count(handled, envelopes)

        return on_batch

    def _batch_failed(self, envelopes: list[Envelope], topic: str, tname: str, owner: str, exc: Exception) -> None:
        log.error("batch handler in %s failed on %s (%d messages dead-lettered): %s", owner, topic, len(envelopes),
                  exc, exc_info=exc)
        now = self.clock.time()
        for envelope in envelopes:
            self.dead_letters.put(DeadLetter(
                dl.HANDLER_ERROR, f"{type(exc).__name__}: {exc} (batch of {len(envelopes)})", topic, tname, now,
                [], owner, envelope,
            ))

    def _make_callback(self, handler: Handler, owner: str, transport: Transport,
                       types: set[str] | None) -> Callable[[str, Envelope | RawMessage], Awaitable[None]]:
        is_async = inspect.iscoroutinefunction(handler)
        handled = self.stats.handled
        tname = transport.name
        admit_raw = self._raw_admitter(transport, owner)

        async def on_message(topic: str, message: Envelope | RawMessage) -> None:
            if isinstance(message, Envelope):
                envelope = message
            else:
                verdict = message.verdict
                if verdict is None:
                    verdict = message.verdict = admit_raw(topic, message) or False
                if not isinstance(verdict, Envelope):
                    return
                envelope = verdict
            if types is not None and envelope.type not in types:
                return
            if self.telemetry is not None:
                await self._handle_traced(handler, envelope, [envelope], topic, owner, tname)
                return
            try:  # _call's body, inlined: one coroutine less per message on the hot path
                if is_async:
                    await handler(envelope)  # type: ignore[misc]  # is_async: it returns an awaitable (no cast on the hot path)
                else:
                    result = handler(envelope)
                    if result is not None and inspect.isawaitable(result):
                        await result
            except asyncio.CancelledError:
                raise
            except Redeliver:
                self.stats.redeliver += 1
                raise
            except Exception as exc:
                self._handler_failed(envelope, topic, tname, owner, exc)
                return
            handled[envelope.type] += 1

        if not is_async and self.telemetry is None:  # tracing keeps the coroutine (spans around the await)
            # No reference back to on_message: a cycle would keep a killed component alive until a GC pass.
            cast(Any, on_message).run = self._make_direct_run(handler, owner, transport, types)
            cast(Any, on_message).direct = self._make_direct(handler, owner, transport, types, admit_raw)
        return on_message

    def _make_direct(self, handler: Handler, owner: str, transport: Transport, types: set[str] | None,
                     admit_raw: Callable[[str, RawMessage], Envelope | None]) -> DirectCallback:
        """``on_message`` for a sync handler without a coroutine (transport.base.DirectCallback; the
        Kafka subscriber calls it per record: a coroutine and its await were ~1 µs of each). Same
        outcomes: bytes admitted (or dead-lettered) once per delivery, a handler error
        dead-lettered, :class:`Redeliver` raised to the transport, an awaitable result finished by
        the coroutine returned."""
        handled = self.stats.handled
        stats = self.stats
        tname = transport.name
        isawaitable = inspect.isawaitable

        def direct(topic: str, message: Envelope | RawMessage) -> Awaitable[None] | None:
            if isinstance(message, Envelope):
                envelope = message
            else:
                verdict = message.verdict
                if verdict is None:
                    verdict = message.verdict = admit_raw(topic, message) or False
                if not isinstance(verdict, Envelope):
                    return None
                envelope = verdict
            if types is not None and envelope.type not in types:
                return None
            try:
                result = handler(envelope)
            except Redeliver:
                stats.redeliver += 1
                raise
            except Exception as exc:
                self._handler_failed(envelope, topic, tname, owner, exc)
                return None
            if result is not None and isawaitable(result):
                return self._finish(result, envelope, topic, tname, owner)
            handled[envelope.type] += 1
            return None

        return direct

    def _raw_admitter(self, transport: Transport, owner: str) -> Callable[[str, RawMessage], Envelope | None]:
        """``_admit`` for one subscription, with the good path of a structured event inlined (the
        general decoder's checks of every form were a third of a consumed record's cost): a
        structured event marked by its content type, or with no headers at all (Kafka's default
        between Forge processes) one whose body starts as Forge's encoders write it, decoded,
        versioned and validated. Anything else, and whatever fails, goes through ``_admit``,
        which decodes every form and dead-letters with the reason."""
        admit = self._admit
        fast_entry = self.schemas.fast_entry
        decode_structured = self._decoder(transport).decode_structured

        def admit_raw(topic: str, message: RawMessage) -> Envelope | None:
            headers = message.headers
            body = message.body
            if (body.startswith(b'{"specversion"') and not headers) or (headers and is_structured(headers)):
                decoded = decode_structured(topic, body)
                if decoded is not None:
                    entry = fast_entry(decoded.type)
                    if entry is not None and entry[1] == decoded.schema_version:
                        try:
                            entry[0](decoded.payload)
                            return decoded
                        except InvalidPayload:
                            pass  # _admit says why
            return admit(topic, message, transport, owner)

        return admit_raw

    def _make_direct_run(self, handler: Handler, owner: str, transport: Transport, types: set[str] | None,
                         ) -> DirectRun:
        """``on_message`` for a sync handler over a run of queued envelopes, without a coroutine or a
        call per message (transport.base.DirectRun; the in-memory transport's drain calls it; bytes
        still go through ``on_message``). Same outcomes per message as ``on_message``: a handler
        error is dead-lettered, :class:`Redeliver` and an awaitable result go back to the transport.
        ``handled`` is added per run of one type when the run ends, before any other task runs; a
        handler reading it meanwhile sees the run's earlier messages not yet counted."""
        handled = self.stats.handled
        tname = transport.name
        stats = self.stats
        isawaitable = inspect.isawaitable

        def run(queue: deque[QueueEntry]) -> tuple[int, QueueEntry | None, Awaitable[None] | BaseException | None]:
            popleft = queue.popleft
            done = counted = 0  # deliveries: ``done`` + ``counted``, the handled ones of type ``counting``
            counting: str | None = None
            entry: QueueEntry | None = None
            try:
                while queue:
                    entry = popleft()
                    # An Envelope alone (its first delivery, topic on it: one test for most entries) or
                    # (topic, message, attempt).
                    message: Any = entry
                    if entry.__class__ is not Envelope:
                        message = entry[1] if entry.__class__ is tuple else entry
                        if message.__class__ is not Envelope:  # bytes to decode (or an Envelope subclass)
                            queue.appendleft(entry)
                            break
                    type_ = message.type
                    if types is not None and type_ not in types:
                        done += 1
                        continue
                    try:
                        result = handler(message)
                    except Redeliver as exc:
                        stats.redeliver += 1
                        return done + counted, entry, exc
                    except Exception as exc:
                        self._handler_failed(message, _topic(entry), tname, owner, exc)
                        done += 1
                        continue
                    if result is not None and isawaitable(result):
                        return done + counted, entry, self._finish(result, message, _topic(entry), tname, owner)
                    if type_ is not counting:
                        if counted:
                            handled[counting] += counted  # type: ignore[index]  # counted > 0: a type
                            done += counted
                        counting, counted = type_, 0
                    counted += 1
            except Exception as exc:  # the bus's own failure (a dead-letter sink raising, say): as on_message's
                return done + counted, entry, exc
            finally:
                if counted:
                    handled[counting] += counted  # type: ignore[index]
            return done + counted, None, None

        return run

    async def _finish(self, result: Awaitable[None], envelope: Envelope, topic: str, tname: str, owner: str) -> None:
        """Await what a sync handler returned, as on_message does."""
        try:
            await result
        except asyncio.CancelledError:
            raise
        except Redeliver:
            self.stats.redeliver += 1
            raise
        except Exception as exc:
            self._handler_failed(envelope, topic, tname, owner, exc)
            return
        self.stats.handled[envelope.type] += 1

    async def _handle_traced(self, handler: Handler | BatchHandler, argument: Envelope | list[Envelope],
                             envelopes: list[Envelope], topic: str, owner: str, tname: str) -> None:
        """Call ``handler(argument)`` (one envelope, or the list ``envelopes`` for a batch handler) in
        a span that continues the (first) message's trace; count and time it as the untraced paths do."""
        telemetry = self.telemetry
        assert telemetry is not None
        first = envelopes[0]
        batch = argument is envelopes
        attributes: dict[str, Any] = {"messaging.destination.name": topic, "forge.component": owner}
        if batch:
            attributes["messaging.batch.message_count"] = len(envelopes)
        start = self.clock.monotonic()
        with telemetry.tracer.start_as_current_span(
            f"handle {first.type}", context=telemetry.extract(first.headers), attributes=attributes,
        ) as span:
            try:
                await _call(handler, argument)
            except asyncio.CancelledError:
                raise
            except Redeliver as exc:
                span.record_exception(exc)
                self.stats.redeliver += 1
                raise
            except Exception as exc:
                span.record_exception(exc)
                if batch:
                    self._batch_failed(envelopes, topic, tname, owner, exc)
                else:
                    self._handler_failed(first, topic, tname, owner, exc)
                return
        _count(self.stats.handled, envelopes)
        for type_, count in Counter(e.type for e in envelopes).items():
            telemetry.messages_handled.add(count, {"type": type_, "component": owner})
        telemetry.handle_duration.record((self.clock.monotonic() - start) * 1000.0, {"type": first.type})

    def _handler_failed(self, envelope: Envelope, topic: str, tname: str, owner: str, exc: Exception) -> None:
        log.error("handler of %s in %s failed on %s: %s", envelope.type, owner, topic, exc, exc_info=exc)
        self.dead_letters.put(DeadLetter(
            dl.HANDLER_ERROR, f"{type(exc).__name__}: {exc}", topic, tname, self.clock.time(),
            [], owner, envelope,
        ))

    def _admit(self, topic: str, raw: RawMessage, transport: Transport, owner: str) -> Envelope | None:
        """Decode and validate bytes from a network transport; dead-letter what fails."""
        try:
            envelope = self._decoder(transport).decode(topic, raw.body, raw.headers)
        except DecodeError as exc:
            self.dead_letters.put(DeadLetter(dl.DECODE_ERROR, str(exc), topic, transport.name, self.clock.time(),
                                             [], owner, None, _text(raw.body), dict(raw.headers)))
            return None
        try:
            schema = self.schemas.get(envelope.type)
        except UnknownMessageType as exc:
            self.dead_letters.put(DeadLetter(dl.UNKNOWN_TYPE, str(exc), topic, transport.name, self.clock.time(),
                                             [], owner, envelope, None, dict(raw.headers)))
            return None
        if envelope.schema_version != schema.version:
            self.dead_letters.put(DeadLetter(
                dl.INVALID, f"schema version {envelope.schema_version} of {envelope.type!r} is not supported "
                f"(registered: {schema.version})", topic, transport.name, self.clock.time(), [], owner, envelope,
            ))
            return None
        try:
            schema.check_fast(envelope.payload)
        except InvalidPayload:
            self.dead_letters.put(DeadLetter(
                dl.INVALID, f"{envelope.type!r} does not match its schema", topic, transport.name,
                self.clock.time(), schema.errors(envelope.payload), owner, envelope,
            ))
            return None
        return envelope

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


async def _call(handler: Callable[[Any], Awaitable[None] | None], argument: Any) -> None:
    """Call a sync or async handler."""
    result = handler(argument)
    if result is not None and inspect.isawaitable(result):
        await result


def _count(counter: Counter[str], envelopes: list[Envelope]) -> None:
    first = envelopes[0].type
    for envelope in envelopes:
        if envelope.type is not first and envelope.type != first:
            counter.update(e.type for e in envelopes)
            return
    counter[first] += len(envelopes)


def _topic(entry: QueueEntry) -> str:
    """The topic of a queued message (transport.base.QueueEntry)."""
    return entry[0] if isinstance(entry, tuple) else entry.topic


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")
