"""Helpers on the shared broker; ``kafka_bootstrap`` itself comes from forge_kafka.testing (pytest11)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from forge_core import Envelope, IdGenerator, RawMessage
from forge_core.transport import Decoder

from forge_kafka import KafkaTransport

#: Tansu holds a group join for about half the session timeout: keep both short in tests.
FAST: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500,
                        "retry_backoff": 0.01, "linger_ms": 1}


@pytest.fixture
def make_transport(kafka_bootstrap: str):
    """``make_transport(name, **settings)``: a KafkaTransport on the shared broker, fast group settings."""

    def make(name: str = "kafka", **settings: Any) -> KafkaTransport:
        return KafkaTransport(name, {"bootstrap": kafka_bootstrap, **FAST, **settings},
                              plant=f"t{uuid.uuid4().hex[:6]}")

    return make


def payload_of(topic: str, message: RawMessage) -> Any:
    """The payload of a raw record in either content mode, as the bus would decode it."""
    return Decoder(prefix="ce_", ids=IdGenerator(), clock_time=time.time).decode(topic, message.body,
                                                                                  message.headers).payload


def envelope(payload: Any, *, key: str | None = None, source: str = "m1") -> Envelope:
    return Envelope("test.reading", payload, source, uuid.uuid4().hex, time.time(), key, 1, {})


async def wait_until(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """Records of ``topic`` from the beginning, by assignment (no group join to wait for)."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    deadline = time.monotonic() + timeout
    while topic not in metadata.topics and time.monotonic() < deadline:
        time.sleep(0.2)
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
    partitions = metadata.topics[topic].partitions
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[Any] = []
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            records.append(message)
    consumer.close()
    return records
