"""The producer under a broker failure on the three-broker cluster (marker ``drills``): idempotent,
``acks=all``, the leader of a partition SIGKILLed or frozen (SIGSTOP) mid-stream; afterwards the
topic's log holds every record, and exactly once while one producer id was used throughout (what
librdkafka sends again to the new leader is deduplicated by the broker: producer id and sequence
number). A frozen leader can hold acks past ``stall_timeout``: the transport then replaces the
producer and re-sends what it held under a new producer id, which the broker cannot deduplicate —
the duplicates in the log are then bounded by ``resent`` (at least once)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from forge_kafka import KafkaTransport
from forge_kafka.testing import KafkaCluster

from ..conftest import envelope

pytestmark = [pytest.mark.drills, pytest.mark.servers, pytest.mark.timeout(300)]


def read_log(cluster: KafkaCluster, topic: str, partitions: int, expect: int, timeout: float = 60) -> list[bytes]:
    """Every record value of ``topic`` from the beginning (by assignment, no group)."""
    consumer = Consumer({**cluster.client_config(), "group.id": "log-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    values: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while (len(at_end) < partitions or len(values) < expect) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == message.error()._PARTITION_EOF:  # type: ignore[union-attr]
                    at_end.add(message.partition() or 0)
                continue
            values.append(message.value() or b"")
    finally:
        consumer.close()
    return values


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_leader_lost_mid_stream_leaves_every_record_once_in_the_log(kafka_cluster: KafkaCluster, fault: str) -> None:
    topic = f"sensor-data-{uuid.uuid4().hex[:6]}"
    total = 1500

    async def publish() -> dict[str, int]:
        kafka = KafkaTransport("kafka", {
            "bootstrap": kafka_cluster.bootstrap, "linger_ms": 1,
            # above request.timeout.ms + broker.session.timeout.ms: the dead leader is waited out by
            # librdkafka's own retries (same producer id), not by a replacement producer
            "stall_timeout": 30.0, "producer": {"request.timeout.ms": 5000},
            "topics": {topic: {"partitions": 3, "replication": 3, "config": {"min.insync.replicas": "2"}}}},
            plant="drill")
        await kafka.connect()
        victim = kafka_cluster.leader_of(topic, 0)
        try:
            for n in range(total):
                await kafka.publish(topic, envelope({"n": n}, key=f"sensor-{n % 12}"))
                if n == total // 3:
                    {"kill": kafka_cluster.kill, "freeze": kafka_cluster.freeze}[fault](victim)
                if n % 10 == 9:
                    await asyncio.sleep(0.02)  # ~500 records/s
            assert await kafka.flush(90) == 0
        finally:
            await kafka.close()
        return dict(kafka.connection.stats)

    stats = asyncio.run(publish())
    values = read_log(kafka_cluster, topic, 3, total)
    counts = Counter(orjson.loads(value)["data"]["n"] for value in values)
    print(f"{len(values)} records in the log for {total} published; stats {stats}")
    assert set(counts) == set(range(total)), "nothing lost"
    assert stats.get("publish_failed", 0) == 0
    if stats.get("producer_replaced", 0) == 0:  # one producer id throughout: the broker deduplicated retries
        assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1][:10]
    else:  # a new producer id re-sends what it was given back: duplicates bounded by it
        assert len(values) - total <= stats["resent"]
