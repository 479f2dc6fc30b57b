"""The receiving half of the bus: the callbacks a subscription hands its transport.

Bytes from a network transport are admitted once per delivery (decoded, typed, versioned,
validated; what fails is dead-lettered with the reason) before a handler sees them; a handler
that raises has its message dead-lettered, :class:`~forge_core.errors.Redeliver` goes back to the
transport. Sync handlers get paths without a coroutine per message (``direct`` for a record,
``run`` for a queued run in memory); a batch handler gets the valid messages of what arrived together.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from functools import partial
from inspect import CO_COROUTINE, iscoroutinefunction
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any, cast

from forge_core.bus.stats import BusStats
from forge_core.errors import DecodeError, Redeliver, UnknownMessageType
from forge_core.messages import deadletter as dl
from forge_core.messages.deadletter import DeadLetter, DeadLetterChannel
from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage
from forge_core.messages.schemas import InvalidPayload, SchemaRegistry
from forge_core.transport.base import DirectCallback, DirectRun, QueueEntry, Transport
from forge_core.transport.codec import Decoder, TypeBinding, is_structured

if TYPE_CHECKING:
    from forge_core.clock import Clock
    from forge_core.telemetry import Telemetry

log = logging.getLogger("forge.bus")

Handler = Callable[[Envelope], Awaitable[None] | None]
BatchHandler = Callable[[list[Envelope]], Awaitable[None] | None]


class Delivery:
    """The receiving half of :class:`~forge_core.bus.MessageBus` (its base class): the state below
    is set by the bus's constructor."""

    schemas: SchemaRegistry
    clock: Clock
    stats: BusStats
    dead_letters: DeadLetterChannel
    telemetry: Telemetry | None
    ids: IdGenerator
    _decoders: dict[str, Decoder]
    _bindings: list[TypeBinding]
    _infer: Callable[[str, Any], str | None] | None

    def _decoder(self, transport: Transport) -> Decoder:
        decoder = self._decoders.get(transport.name)
        if decoder is None:
            decoder = Decoder(self._bindings, prefix=getattr(transport, "header_prefix", "ce_"), ids=self.ids,
                              clock_time=self.clock.time, infer_type=self._infer)
            self._decoders[transport.name] = decoder
        return decoder

    def _make_batch_callback(self, handler: BatchHandler, owner: str, transport: Transport,
                             types: set[str] | None) -> Callable[[str, list[Envelope | RawMessage]], Awaitable[None]]:
        handled = self.stats.handled
        tname = transport.name
        admit_raw = self._raw_admitter(transport, owner)

        async def on_batch(topic: str, messages: list[Envelope | RawMessage]) -> None:
            envelopes: list[Envelope] = []
            add = envelopes.append
            for message in messages:
                if isinstance(message, Envelope):
                    envelope = message
                else:
                    verdict: Envelope | bool | None = message.verdict
                    if verdict is None:
                        verdict = message.verdict = admit_raw(topic, message) or False
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
            try:  # _call's body, inlined: one coroutine less per list (a memory batch is often one message)
                result = handler(envelopes)
                if result is not None and inspect.isawaitable(result):
                    await result
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
        func = handler.__func__ if type(handler) is MethodType else handler  # inspect's answer, 5 frames less
        is_async = (bool(func.__code__.co_flags & CO_COROUTINE) if type(func) is FunctionType
                    else iscoroutinefunction(handler))
        handled = self.stats.handled
        tname, admit_raw = transport.name, self._raw_admitter(transport, owner)

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

        if is_async or self.telemetry is not None:  # tracing keeps the coroutine (spans around the await)
            return on_message
        # The forms without a coroutine ride on a partial: a closure compiled by mypyc, reused from its type's free
        # instance, kept the one before's attributes. No cycle back (it would keep a killed component alive).
        callback: Any = partial(on_message)
        callback.run = self._make_direct_run(handler, owner, transport, types)
        callback.direct = self._make_direct(handler, owner, transport, types, admit_raw)
        return cast(Callable[[str, Envelope | RawMessage], Awaitable[None]], callback)

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
            message: Any
            try:
                # ``while queue``, not popleft until IndexError: raising it ended every run (~2,500 instructions,
                # paid per burst, and a plant's bursts are mostly of one message); the test costs ~30 a message
                while queue:
                    entry = message = popleft()
                    # An Envelope alone (its first delivery, topic on it: most entries) or (topic, message,
                    # attempt); reading ``type`` tells them apart at no extra cost (a tuple has none).
                    try:
                        type_ = message.type
                    except AttributeError:
                        message = entry[1]  # type: ignore[index]  # a tuple
                        if not isinstance(message, Envelope):  # bytes to decode: on_message's
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
        self.dead_letters.put(DeadLetter(dl.HANDLER_ERROR, f"{type(exc).__name__}: {exc}", topic, tname,
                                         self.clock.time(), [], owner, envelope))

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


async def _call(handler: Callable[[Any], Awaitable[None] | None], argument: Any) -> None:  # sync or async
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
