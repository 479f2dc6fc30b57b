"""What a failing handler gets through the message bus on Kafka (issue 14: the sensor processor
relies on it): an ordinary exception is a dead letter and the offsets are committed; a
``Redeliver`` is never dead-lettered: the partitions rewind and the records come again until a
delivery returns, then they are committed. Nothing is lost either way."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from forge_core import MessageBus, RealClock, Redeliver
from forge_core.messages.schemas import SchemaRegistry

from forge_kafka import KafkaTransport, to_kafka

from ..conftest import FAST, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

READING = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def committed_everything(bootstrap: str, group_id: str, topic: str) -> bool:
    """Whether the group's committed offset is the end of every partition of ``topic``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False})
    try:
        name = to_kafka(topic)
        parts = consumer.committed([TopicPartition(name, p) for p in range(3)], timeout=10)
        return all(tp.offset == consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
    finally:
        consumer.close()


class Flaky:
    """Raises ``error`` for the first ``failures`` calls (the database is down), then records."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error = failures, error
        self.calls = 0
        self.handled: list[int] = []

    async def __call__(self, got: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        envelopes = got if isinstance(got, list) else [got]
        self.handled.extend(e.payload["n"] for e in envelopes)


async def run_bus(bootstrap: str, topic: str, handler: Flaky, *, batch: bool, count: int = 60,
                  **settings: Any) -> tuple[MessageBus, KafkaTransport, str]:
    """Publish ``count`` readings over 3 partitions and subscribe ``handler`` in group ``g``; returns
    once every reading was handled or dead-lettered (the transport is closed)."""
    kafka = KafkaTransport("kafka", {"bootstrap": bootstrap, **FAST, "topics": {topic: {"partitions": 3}},
                                     **settings}, plant=f"t{uuid.uuid4().hex[:6]}")
    schemas = SchemaRegistry()
    schemas.add("test.reading", READING)
    bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"kafka": kafka})
    await kafka.connect()
    try:
        await bus.publish_batch(topic, "test.reading", [{"n": n} for n in range(count)], source="sensors",
                                keys=[f"sensor-{n % 12}" for n in range(count)])
        assert await kafka.flush() == 0
        await bus.subscribe(topic, handler, owner="processor", group="g", batch=batch)
        await wait_until(lambda: len(handler.handled) + bus.dead_letters.total >= count, 90)
        await asyncio.sleep(0.3)  # anything delivered twice would show up now
    finally:
        await kafka.close()  # commits what was stored
    return bus, kafka, kafka.group_id(topic, "g", "processor")


@pytest.mark.parametrize("batch", [True, False])
def test_redeliver_rewinds_until_handled_nothing_dead_lettered_nothing_lost(kafka_bootstrap: str,
                                                                           batch: bool) -> None:
    topic = f"redeliver{uuid.uuid4().hex[:6]}"
    # max_redeliveries 1: two deliveries in place per round, so 7 failures take 3 rewinds
    handler = Flaky(7, Redeliver("database unreachable"))
    bus, kafka, group_id = asyncio.run(run_bus(kafka_bootstrap, topic, handler, batch=batch,
                                               max_redeliveries=1, retry_backoff_max=0.2))
    assert sorted(handler.handled) == list(range(60)), "each reading handled once, none lost"
    stats = kafka.connection.stats
    assert stats["rewound"] == 3 and stats["redeliver_asked"] >= 3
    assert stats["dead_lettered"] == 0 and stats["undeliverable"] == 0
    assert bus.dead_letters.total == 0 and bus.stats.redeliver == 7
    assert to_kafka(topic) + ".dlq" not in kafka.connection.known_topics
    assert committed_everything(kafka_bootstrap, group_id, topic)


def test_an_ordinary_exception_in_a_batch_handler_is_dead_lettered_and_committed(kafka_bootstrap: str) -> None:
    """Today's semantics, kept for poison messages: the bus dead-letters the batch (handler_error)
    and acknowledges it, so the transport commits; it is not delivered again."""
    topic = f"poison{uuid.uuid4().hex[:6]}"
    handler = Flaky(1, ValueError("bad reading"))
    bus, kafka, group_id = asyncio.run(run_bus(kafka_bootstrap, topic, handler, batch=True))
    letters = list(bus.dead_letters.recent)
    assert letters and {letter.reason for letter in letters} == {"handler_error"}
    failed = sorted(letter.envelope.payload["n"] for letter in letters if letter.envelope is not None)
    assert sorted(handler.handled + failed) == list(range(60)), "the failed batch is dead letters, not redelivered"
    assert kafka.connection.stats["redelivered"] == 0
    assert committed_everything(kafka_bootstrap, group_id, topic)
