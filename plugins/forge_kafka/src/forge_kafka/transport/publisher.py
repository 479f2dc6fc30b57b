"""Publishing: the produce loop, confirmed sends, and the re-send of what a replaced producer held.

Idempotent producer, ``acks=all``, key = ``envelope.key or envelope.source`` so one machine's
messages share a partition and keep their order. ``publish`` returns once librdkafka has the
message (``confirm_publish: true`` waits for the broker's ack); only failures reach Python
(``delivery.report.only.error``). A failure report of a message purged from a stalled producer
re-sends it to the producer replacing it (:meth:`KafkaPublisher.on_failed`), so nothing the
application handed over is lost when the broker forgot the producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaError, Message
from forge_core import Envelope, TransportClosed, TransportError
from forge_core.transport import (
    STRUCTURED_CONTENT_TYPE,
    encode_body,
    encode_headers,
    encode_structured,
    encode_structured_many,
    validate_topic,
)

from forge_kafka.transport.admin import to_kafka
from forge_kafka.transport.connection import KafkaConnection

log = logging.getLogger("forge.transport.kafka")

#: Record headers as confluent-kafka takes them.
Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None]

#: The one header of a structured-mode record (CloudEvents Kafka binding).
STRUCTURED_HEADERS: list[tuple[str, str | bytes | None]] = [("content-type", STRUCTURED_CONTENT_TYPE)]


class KafkaPublisher:
    """Everything a transport publishes goes through here, on the connection's producer."""

    def __init__(self, connection: KafkaConnection) -> None:
        self.connection = connection
        self.name = connection.name
        self.settings = connection.settings
        self.structured = self.settings.content_mode == "structured"
        self._failed = self.on_failed  # one bound method, partial()-ed per message

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, topic: str, envelope: Envelope) -> None:
        connection = self.connection
        producer = connection.producer
        if connection.closed or producer is None:
            state = "closed" if connection.closed else "not connected"
            raise TransportClosed(f"kafka transport {self.name!r} is {state}; cannot publish to {topic!r}")
        validate_topic(topic)
        kafka_topic = to_kafka(topic)
        headers: Headers
        if self.structured:
            body, headers = encode_structured(envelope), STRUCTURED_HEADERS
        else:
            body, headers = encode_body(envelope.payload), cast(Headers, encode_headers(envelope, "ce_"))
        key = envelope.key or envelope.source
        if self.settings.confirm_publish:
            await self.produce(kafka_topic, body, key, headers)
        else:
            try:  # the hot path: librdkafka takes it, nothing to await
                if self.structured:  # the same headers for every record: the producer's report callback
                    producer.produce(kafka_topic, body, key, headers=headers)
                else:  # the failure report must hold this record's headers to send it again
                    producer.produce(kafka_topic, body, key, headers=headers, on_delivery=partial(self._failed, headers))
            except BufferError:  # local queue full: wait for room
                await self.produce(kafka_topic, body, key, headers)
        connection.stats["published"] += 1

    async def publish_batch(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Every envelope in order, in one tight loop: the topic checked once, no coroutine per
        message. Falls back to ``publish`` per message for binary mode or ``confirm_publish``."""
        connection = self.connection
        producer = connection.producer
        if connection.closed or producer is None or not self.structured or self.settings.confirm_publish:
            for envelope in envelopes:
                await self.publish(topic, envelope)
            return
        validate_topic(topic)
        kafka_topic = to_kafka(topic)
        produce = producer.produce
        headers = STRUCTURED_HEADERS
        for envelope, body in zip(envelopes, encode_structured_many(envelopes), strict=True):
            key = envelope.key or envelope.source
            try:
                produce(kafka_topic, body, key, headers=headers)
            except BufferError:  # local queue full: wait for room
                await self.produce(kafka_topic, body, key, headers)
        connection.stats["published"] += len(envelopes)

    async def produce(self, kafka_topic: str, body: bytes, key: str | bytes | None, headers: Headers, *,
                      confirm: bool | None = None) -> None:
        """Hand one record to librdkafka, waiting for room; with ``confirm`` (default
        ``confirm_publish``) return only once the broker acknowledged it (TransportError if not)."""
        producer = self.connection.producer
        assert producer is not None
        future: asyncio.Future[None] | None = None
        if confirm if confirm is not None else self.settings.confirm_publish:
            future = (self.connection.loop or asyncio.get_running_loop()).create_future()
        while True:
            try:
                if future is None:
                    producer.produce(kafka_topic, body, key, headers=headers, on_delivery=partial(self._failed, headers))
                else:
                    producer.produce(kafka_topic, body, key, headers=headers, on_delivery=self._resolver(future))
                break
            except BufferError:  # local queue full: let the poller drain it
                await asyncio.sleep(0.005)
        if future is None:
            return
        if not self.settings.confirm_publish:
            # delivery.report.only.error: success is silent, so wait for the queue to drain; a
            # failure has resolved the future by then.
            remaining = await asyncio.get_running_loop().run_in_executor(None, producer.flush, 30.0)
            if not future.done():
                if remaining:
                    raise TransportError(f"kafka transport {self.name!r}: no ack from {self.settings.bootstrap} "
                                         f"for {kafka_topic!r} within 30s")
                future.set_result(None)
        await future

    def _resolver(self, future: asyncio.Future[None]) -> Any:
        loop = future.get_loop()

        def resolve(error: KafkaError | None, message: Message) -> None:
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
        producer = self.connection.producer
        if producer is None:
            return 0
        return await asyncio.get_running_loop().run_in_executor(None, producer.flush, timeout)

    # -- delivery reports (producer poll thread) -------------------------------------------------
    def on_failed(self, headers: Headers, error: KafkaError | None, message: Message) -> None:
        """Delivery report of a published message (only failures reach Python). A delivery report
        does not carry the headers, so each message's callback holds them, for a re-send."""
        if error is None:
            return
        connection = self.connection
        resend_to = connection.resend_to
        if resend_to is not None and error.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            connection.stats["resent"] += 1
            topic = message.topic()
            assert topic is not None  # a produced record always has its topic
            while True:
                try:
                    resend_to.produce(topic, message.value(), message.key(), headers=headers,
                                      on_delivery=partial(self._failed, headers))
                    return
                except BufferError:
                    resend_to.poll(0.05)
        self._on_delivery(error, message)

    def on_structured_report(self, error: KafkaError | None, message: Message) -> None:
        """Failure report of a record produced without a callback of its own: a structured-mode
        publish, whose headers are the same for every record (the producer-wide ``on_delivery``)."""
        self.on_failed(STRUCTURED_HEADERS, error, message)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        self.connection.stats["publish_failed"] += 1
        self.connection.last_error = str(error)
        log.error("kafka %s: delivery to %s failed: %s", self.name, message.topic(), error)
