"""Dead letters of the Kafka transport: a record whose handler kept raising goes to
``<topic><dead_letter_suffix>`` with the reason in headers, and the runtime's dead-letter channel
hears of it; the offset is committed only once the dead letter is safely on the broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from confluent_kafka import Message
from forge_core import RawMessage, TransportClosed, TransportError
from forge_core.tactics import Backoff

from forge_kafka.transport.admin import to_forge

if TYPE_CHECKING:
    from forge_kafka.transport.subscriber import KafkaSubscription

log = logging.getLogger("forge.transport.kafka")

#: Headers added to a dead-lettered record (no ``ce_`` prefix: not CloudEvents attributes).
DLQ_REASON = "forge_dlq_reason"
DLQ_ERROR = "forge_dlq_error"
DLQ_TOPIC = "forge_dlq_topic"
DLQ_PARTITION = "forge_dlq_partition"
DLQ_OFFSET = "forge_dlq_offset"
DLQ_GROUP = "forge_dlq_group"
DLQ_ATTEMPTS = "forge_dlq_attempts"

_RawHeaders = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None


def record_position(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a fetched record (always set on a record without error)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


async def dead_letter(subscription: KafkaSubscription, message: Message, error: Exception, attempts: int) -> None:
    """Tell the runtime's dead-letter channel, then put the record on ``<topic><dead_letter_suffix>``
    with the reason in headers; returns once the broker has it (retrying with a backoff), so
    the offset is committed only after the dead letter is safe."""
    transport = subscription.transport
    connection = subscription.connection
    settings = subscription.settings
    kafka_topic, partition, offset = record_position(message)
    connection.stats["undeliverable"] += 1
    record_headers = [(k, v) for k, v in _pairs(message.headers()) if v is not None]
    on_undeliverable = transport.on_undeliverable
    if on_undeliverable is not None:  # the runtime's dead-letter channel hears of it too
        raw = RawMessage(message.value() or b"", {k: v.decode() if isinstance(v, bytes) else v
                                                  for k, v in record_headers if v is not None})
        on_undeliverable(to_forge(kafka_topic), raw, error)
    if not settings.dead_letter:
        return
    dlq = kafka_topic + settings.dead_letter_suffix
    headers: list[tuple[str, str | bytes | None]] = [
        *record_headers,
        (DLQ_REASON, "undeliverable"),
        (DLQ_ERROR, f"{type(error).__name__}: {error}"[:2000]),
        (DLQ_TOPIC, kafka_topic),
        (DLQ_PARTITION, str(partition)),
        (DLQ_OFFSET, str(offset)),
        (DLQ_GROUP, subscription.group_id),
        (DLQ_ATTEMPTS, str(attempts)),
    ]
    backoff = Backoff(initial=0.1, maximum=5.0)
    while True:  # the offset is committed only once the dead letter is safely on the broker
        try:
            if settings.create_topics and dlq not in connection.known_topics:
                await connection.ensure_topic(to_forge(dlq))
            await transport.publisher.produce(dlq, message.value() or b"", message.key(), headers, confirm=True)
            connection.stats["dead_lettered"] += 1
            return
        except (TransportError, ValueError) as exc:
            if subscription.stopped:
                raise TransportClosed(f"kafka transport {transport.name!r}: closed before dead-lettering "
                                      f"{kafka_topic}@{offset}") from exc
            log.error("kafka %s: cannot dead-letter to %s (retrying): %s", transport.name, dlq, exc)
            await asyncio.sleep(backoff.next())


def _pairs(headers: _RawHeaders) -> Sequence[tuple[str, str | bytes | None]]:
    if not headers:
        return ()
    return list(headers.items()) if isinstance(headers, dict) else headers
