"""Publishing: the produce loop, confirmed sends, and the re-send of what a replaced producer held.

Idempotent producer, ``acks=all``, key = ``envelope.key or envelope.source`` so one machine's
messages share a partition and keep their order. ``publish`` returns once librdkafka has the
message (``confirm_publish: true`` waits for the broker's ack); only failures reach Python
(``delivery.report.only.error``). Every message carries its place in publish order (``seq``) in
its delivery callback: a message a fatal, stalled or forgotten producer gives back is held by the
connection (:meth:`KafkaPublisher.on_failed`) and re-sent on the producer replacing it, all of
them in publish order before any new one, so nothing the application handed over is lost or
reordered when the broker forgot the producer. A ``publish()`` that meets a fatal producer
replaces it and goes on; it does not raise. The bus calls :meth:`KafkaPublisher.direct_publish`, a
plain function, instead of awaiting ``publish`` (``Transport.direct_publish``): no coroutine per
message while librdkafka takes the records; it hands back a coroutine only when it must wait.

Structured mode writes no header by default (``content_type_header: false``): the receiver knows
the event from its body (``forge_core.transport.Decoder`` sniffs ``specversion`` and ``type``), and
a record without headers is produced positionally — confluent-kafka's keyword path costs ~1 µs a
call even with ``headers=None``, a header ~2-3 µs more on each side (docs/transports/kafka.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any, cast

import msgspec
from confluent_kafka import KafkaError, KafkaException, Message
from forge_core import Envelope, TransportClosed, TransportError
from forge_core.transport import (
    STRUCTURED_CONTENT_TYPE,
    Transport,
    encode_body,
    encode_headers,
    encode_structured,
    encode_structured_many,
    validate_topic,
)

from forge_kafka.transport.admin import to_kafka
from forge_kafka.transport.connection import KafkaConnection, needs_new_producer
from forge_kafka.transport.too_large import TooLarge
from forge_kafka.transport.undeliverable import GiveUp, Record, classify

log = logging.getLogger("forge.transport.kafka")

#: Record headers as confluent-kafka takes them.
Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None]

#: The one header of a structured-mode record with ``content_type_header`` (CloudEvents Kafka binding).
STRUCTURED_HEADERS: list[tuple[str, str | bytes | None]] = [("content-type", STRUCTURED_CONTENT_TYPE)]

#: ``produce()``'s positional ``partition`` for "let the partitioner choose" (librdkafka's RD_KAFKA_PARTITION_UA).
ANY_PARTITION = -1

#: Entries of the publisher's topic cache before it starts over.
_CACHED = 4096


def report_type(failed: Callable[[Headers | None, int, KafkaError | None, Message], None]) -> type[Any]:
    """The delivery callback of a record without headers: an object holding its place in publish
    order (``place``) that, called with a failure report, hands it to ``failed(None, place, error,
    message)``.

    A ``partial(failed, None, place)`` per record cost ~0.6 µs more a ``produce()``: three allocations
    (the partial, its argument tuple, its keyword dict), two of them tracked and walked by the garbage
    collector while the record is in flight (docs/transports/kafka.md, "Fourth pass"). This is one
    object that refers to nothing but its place: a msgspec ``Struct`` the collector does not track,
    built by its C constructor (an ``int`` subclass, as before, took CPython's generic type call:
    ~200 ns more a record, "Tenth pass")."""

    class Report(msgspec.Struct, gc=False):
        place: int

        def __call__(self, error: KafkaError | None, message: Message) -> None:
            failed(None, self.place, error, message)

    return Report



class KafkaPublisher:
    """Everything a transport publishes goes through here, on the connection's producer."""

    def __init__(self, connection: KafkaConnection, transport: Transport | None = None) -> None:
        """``transport``: whose ``on_undeliverable`` hears of each record given up (undeliverable.py)."""
        self.connection = connection
        self.give_up = GiveUp(connection, lambda: transport.on_undeliverable if transport is not None else None)
        connection.give_up_held = self._give_up_held
        #: Records refused with their batch (MSG_SIZE_TOO_LARGE): judged alone, produced once more or given up.
        self.too_large = TooLarge(connection, self.give_up, lambda headers, seq: partial(self.on_failed_again,
                                                                                         headers, seq))
        self.name = connection.name
        self.settings = connection.settings
        self.structured = self.settings.content_mode == "structured"
        #: Headers of every structured record: none (the default), or the content-type mark.
        self.structured_headers: Headers | None = STRUCTURED_HEADERS if self.settings.content_type_header else None
        #: The hot path of direct_publish: structured, no header, not confirmed (the default); read once
        #: here, not as three attribute reads a message.
        self._positional = (self.structured and self.structured_headers is None
                            and not self.settings.confirm_publish)
        self._failed = self.on_failed  # one bound method, partial()-ed per message
        self._seq = itertools.count()  # publish order, carried by each message's delivery callback
        #: The next record's delivery callback when it has no headers: its place from ``_seq`` (shared
        #: with the other paths, so the order is one order) as a callable int (report_type).
        self._reports: Iterator[Any] = map(report_type(self._failed), self._seq)
        self._kafka_topics: dict[str, str] = {}  # Forge topic -> Kafka topic, checked (_kafka_topic)

    # -- publishing ----------------------------------------------------------------------------
    def direct_publish(self, topic: str, envelope: Envelope) -> Awaitable[None] | None:
        """``publish`` without a coroutine when librdkafka takes the record at once (the bus calls
        this: ``Transport.direct_publish``). Returns the coroutine that finishes the publish when it
        must wait: a full local queue, a fatal producer, ``confirm_publish``; the caller awaits it
        before publishing anything else, so the order holds."""
        connection = self.connection
        producer = connection.producer
        if connection.closed or producer is None:
            state = "closed" if connection.closed else "not connected"
            raise TransportClosed(f"kafka transport {self.name!r} is {state}; cannot publish to {topic!r}")
        kafka_topic = self._kafka_topics.get(topic) or self._kafka_topic(topic)
        if self._positional:  # the default: one structured body, no header, nothing to wait for
            body = encode_structured(envelope)
            key = envelope.key or envelope.source
            try:  # only a failure report calls back: with its place in publish order, to re-send it
                producer.produce(kafka_topic, body, key, ANY_PARTITION, next(self._reports))
            except (BufferError, KafkaException):  # queue full, or a fatal producer: the slow path
                return self._produce_counted(kafka_topic, body, key, None)
            connection.published += 1
            return None
        headers: Headers | None
        if self.structured:
            body, headers = encode_structured(envelope), self.structured_headers
        else:
            body, headers = encode_body(envelope.payload), cast(Headers, encode_headers(envelope, "ce_"))
        key = envelope.key or envelope.source
        if self.settings.confirm_publish:
            return self._produce_counted(kafka_topic, body, key, headers)
        try:  # the hot path: librdkafka takes it, nothing to await
            # only a failure report calls back: with the headers and place needed to re-send it
            report = partial(self._failed, headers, next(self._seq))
            if headers is None:  # positional: the keyword path costs ~1 us a call
                producer.produce(kafka_topic, body, key, ANY_PARTITION, report)
            else:
                producer.produce(kafka_topic, body, key, headers=headers, on_delivery=report)
        except (BufferError, KafkaException):  # queue full, or a fatal producer: the slow path
            return self._produce_counted(kafka_topic, body, key, headers)
        connection.published += 1
        return None

    async def _produce_counted(self, kafka_topic: str, body: bytes, key: str | bytes | None,
                               headers: Headers | None) -> None:
        await self.produce(kafka_topic, body, key, headers)
        self.connection.published += 1

    async def publish(self, topic: str, envelope: Envelope) -> None:
        if (pending := self.direct_publish(topic, envelope)) is not None:
            await pending

    def _kafka_topic(self, topic: str) -> str:
        """``topic`` checked and mapped to its Kafka name, remembered: a publisher sends to few topics,
        and the check (a regular expression per level) cost ~1 µs a message."""
        validate_topic(topic)
        kafka_topic = to_kafka(topic)
        if len(self._kafka_topics) >= _CACHED:  # a publisher making up topics: forget, do not grow
            self._kafka_topics.clear()
        self._kafka_topics[topic] = kafka_topic
        return kafka_topic

    #: ``encode_structured``: the attributes one stream shares (source, type, schema version) written
    #: once per shape in the core's encoder, each event one ``orjson.dumps`` of its time, id, key and
    #: data joined to them; ``specversion`` first, as the receivers' fast path expects.
    encode = staticmethod(encode_structured)

    async def publish_batch(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Every envelope in order, in one tight loop: the topic checked once, no coroutine per
        message. Falls back to ``publish`` per message for binary mode or ``confirm_publish``."""
        connection = self.connection
        producer = connection.producer
        if connection.closed or producer is None or not self.structured or self.settings.confirm_publish:
            for envelope in envelopes:
                await self.publish(topic, envelope)
            return
        kafka_topic = self._kafka_topics.get(topic) or self._kafka_topic(topic)
        headers, failed, seq, reports = self.structured_headers, self._failed, self._seq, self._reports
        produce = producer.produce  # read again after the slow path (it may have replaced the producer)
        for envelope, body in zip(envelopes, encode_structured_many(envelopes), strict=True):
            key = envelope.key or envelope.source
            try:
                if headers is None:  # positional: the keyword path costs ~1 us a call
                    produce(kafka_topic, body, key, ANY_PARTITION, next(reports))
                else:
                    produce(kafka_topic, body, key, headers=headers, on_delivery=partial(failed, headers, next(seq)))
            except (BufferError, KafkaException):  # queue full, or a fatal producer: the slow path
                await self.produce(kafka_topic, body, key, headers)
                if connection.producer is None:  # closed meanwhile: as produce() says for the next one
                    raise TransportClosed(f"kafka transport {self.name!r} is closed; cannot publish to {topic!r}")
                produce = connection.producer.produce
        connection.published += len(envelopes)

    async def produce(self, kafka_topic: str, body: bytes, key: str | bytes | None, headers: Headers | None, *,
                      confirm: bool | None = None) -> None:
        """Hand one record to librdkafka, waiting for room; with ``confirm`` (default
        ``confirm_publish``) return only once the broker acknowledged it (TransportError if not).
        A fatal producer is replaced here (what it held re-sent first) and the record produced on
        the new one: the caller waits, it is not refused."""
        connection = self.connection
        seq = next(self._seq)
        future: asyncio.Future[None] | None = None
        if confirm if confirm is not None else self.settings.confirm_publish:
            future = (connection.loop or asyncio.get_running_loop()).create_future()
        report = partial(self._failed, headers, seq) if future is None else self._resolver(future, headers, seq)
        while True:
            producer = connection.producer
            if producer is None:
                raise TransportClosed(f"kafka transport {self.name!r} is closed; cannot publish to {kafka_topic!r}")
            try:
                producer.produce(kafka_topic, body, key, headers=headers, on_delivery=report)
                break
            except BufferError:  # local queue full: let the poller drain it
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if error is None or not error.fatal() and error.code() != KafkaError._FATAL:
                    self._count_error(kafka_topic, error, "failed")
                    raise
                connection.request_replacement(producer, f"fatal: {error.str()}")
                connection.replace_producer(producer)  # on the loop, now: then produce on the new one
        if future is None:
            return
        if not self.settings.confirm_publish:
            # delivery.report.only.error: success is silent, so wait for the queue to drain; a
            # failure has resolved the future by then.
            remaining = await connection.flush(30.0)
            if not future.done():
                if remaining:
                    raise TransportError(f"kafka transport {self.name!r}: no ack from {self.settings.bootstrap} "
                                         f"for {kafka_topic!r} within 30s")
                future.set_result(None)
        await future

    def _resolver(self, future: asyncio.Future[None], headers: Headers | None, seq: int) -> Any:
        loop = future.get_loop()

        def resolve(error: KafkaError | None, message: Message) -> None:
            # re-sent by the next producer, unless none will come; a confirmed caller gets the
            # exception, not a dead letter (one report per record)
            if error is not None and needs_new_producer(error) and not self.connection.late_reports():
                self._count_error(message.topic() or "", error, "resent")
                self.connection.hold((seq, message.topic() or "", message.value(), message.key(), headers, resolve),
                                     f"delivery: {error.str()}")
                return
            if error is not None:
                self._count_error(message.topic() or "", error, "failed")
            def settle() -> None:
                if future.done():
                    return
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(TransportError(
                        f"kafka transport {self.name!r}: delivery to {message.topic()!r} on "
                        f"{self.settings.bootstrap} failed: {error.str()}"))
            loop.call_soon_threadsafe(settle)
        return resolve

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait until every queued message is acknowledged; returns how many are still queued."""
        return await self.connection.flush(timeout)

    # -- delivery reports (producer poll thread) -------------------------------------------------
    def on_failed(self, headers: Headers | None, seq: int, error: KafkaError | None, message: Message) -> None:
        """Delivery report of a published message (only failures reach Python). A report does not
        carry the headers, so each message's callback holds them and its place in publish order:
        what a new producer can deliver is held for it, a batch too large for the topic is produced
        once more, anything else is given up: a dead letter (undeliverable.py, ``classify``)."""
        if error is None:
            return
        action = classify(error, giving_up=self.connection.late_reports())
        if action == "resend":
            self._hold(headers, seq, error, message, partial(self._failed, headers, seq))
        elif action == "retry":
            self._count_error(message.topic() or "", error, "retried")
            self.too_large.refused(seq, message, headers)
        else:
            self._give_up(error, message, headers)

    def on_failed_again(self, headers: Headers | None, seq: int, error: KafkaError | None, message: Message) -> None:
        """Delivery report of a record produced once more after MSG_SIZE_TOO_LARGE: refused again, it
        is given up (a new producer still re-sends what it can)."""
        if error is None:
            return
        if classify(error, retried=True, giving_up=self.connection.late_reports()) == "resend":
            self._hold(headers, seq, error, message, partial(self.on_failed_again, headers, seq))
        else:
            self._give_up(error, message, headers)

    def _hold(self, headers: Headers | None, seq: int, error: KafkaError, message: Message, again: Any) -> None:
        topic = message.topic()
        assert topic is not None  # a produced record always has its topic
        self._count_error(topic, error, "resent")
        self.connection.hold((seq, topic, message.value(), message.key(), headers, again), f"delivery: {error.str()}")

    def _give_up(self, error: KafkaError, message: Any, headers: Headers | None) -> None:
        self._count_error(message.topic() or "", error, "dead_lettered")
        self.give_up.record(error, message, headers)

    def _give_up_held(self, held: list[Any], error: KafkaError) -> None:
        """Records held for a successor that will not come (the transport closes): each one's own
        callback hears ``error`` (a dead letter, or a confirmed caller's exception)."""
        for _, topic, value, key, _headers, on_delivery in sorted(held, key=lambda entry: entry[0]):
            on_delivery(error, Record(topic, value, key))

    def on_structured_report(self, error: KafkaError | None, message: Message) -> None:
        """The producer-wide report callback: every record has its own, so this sees none; one
        without a callback of its own is given up on any error."""
        if error is not None:
            self._give_up(error, message, None)

    def _count_error(self, topic: str, error: KafkaError | None, outcome: str) -> None:
        """``forge.kafka.produce.errors`` (any thread: OpenTelemetry's counters are thread-safe)."""
        metrics = self.connection.metrics
        if metrics is not None:
            metrics.produce_error(topic, error.name() if error is not None else "unknown", outcome, self.name)

