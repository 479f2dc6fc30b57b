"""The Kafka transport, split like FastStream's brokers: connection, publisher, subscriber, admin,
and the thin :class:`KafkaTransport` composing them (``transport.py``)."""

from forge_kafka.transport.admin import ensure_topics, pattern_to_kafka, to_forge, to_kafka
from forge_kafka.transport.connection import KafkaConnection
from forge_kafka.transport.dead_letters import (
    DLQ_ATTEMPTS,
    DLQ_ERROR,
    DLQ_GROUP,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
)
from forge_kafka.transport.publisher import STRUCTURED_HEADERS, KafkaPublisher
from forge_kafka.transport.subscriber import KafkaSubscription
from forge_kafka.transport.transport import KafkaTransport, kafka_factory

__all__ = [
    "DLQ_ATTEMPTS",
    "DLQ_ERROR",
    "DLQ_GROUP",
    "DLQ_OFFSET",
    "DLQ_PARTITION",
    "DLQ_REASON",
    "DLQ_TOPIC",
    "STRUCTURED_HEADERS",
    "KafkaConnection",
    "KafkaPublisher",
    "KafkaSubscription",
    "KafkaTransport",
    "ensure_topics",
    "kafka_factory",
    "pattern_to_kafka",
    "to_forge",
    "to_kafka",
]
