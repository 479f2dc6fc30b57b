"""Topic administration: Forge topics to Kafka names and back, wildcard patterns as regexes; topics
declared in the manifest created with their partitions, replication and topic configs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from forge_core import TransportError

from forge_kafka import KafkaTransport, pattern_to_kafka, to_forge, to_kafka
from forge_kafka.testing import KafkaCluster

from ..conftest import envelope

pytestmark = pytest.mark.timeout(120)



def test_topic_mapping_is_slash_to_dot_and_refuses_what_cannot_map() -> None:
    assert to_kafka("plant/m1/reading") == "plant.m1.reading"
    assert to_forge("plant.m1.reading") == "plant/m1/reading"
    assert pattern_to_kafka("plant/+/reading") == r"^plant\.[^.]+\.reading$"
    assert pattern_to_kafka("plant/#") == r"^plant(\..+)?$"
    assert pattern_to_kafka("plant/m1") == "plant.m1"
    for bad in ("plant/m.1", "plant/m 1", "plant//x"):
        with pytest.raises(ValueError, match="cannot"):
            to_kafka(bad)


# -- topics from the manifest on Apache Kafka ---------------------------------------------------------
def _topic_configs(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=15)
    return {name: entry.value for name, entry in entries.items()}


def _publish_confirmed(settings: dict[str, Any], topic: str, count: int = 3) -> KafkaTransport:
    async def body() -> KafkaTransport:
        kafka = KafkaTransport("kafka", settings, plant="admin")
        await kafka.connect()
        try:
            for n in range(count):
                await kafka.publish(topic, envelope({"n": n}, key=f"sensor-{n}"))
        finally:
            await kafka.close()
        return kafka

    return asyncio.run(body())


@pytest.mark.servers
def test_a_declared_topic_gets_its_partitions_and_topic_configs_and_the_producer_is_idempotent(
        apache_kafka: KafkaCluster) -> None:
    topic = f"sensor-data-{uuid.uuid4().hex[:6]}"
    settings = {"bootstrap": apache_kafka.bootstrap, "confirm_publish": True, "topics": {topic: {
        "partitions": 3, "replication": 1, "config": {"min.insync.replicas": "1", "retention.ms": "3600000"}}}}
    kafka = _publish_confirmed(settings, topic)
    assert kafka.connection.producer_conf["enable.idempotence"] is True
    assert kafka.connection.producer_conf["acks"] == "all"
    admin = apache_kafka.admin()
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3
    configs = _topic_configs(admin, topic)
    assert (configs["min.insync.replicas"], configs["retention.ms"]) == ("1", "3600000")


@pytest.mark.drills
@pytest.mark.servers
@pytest.mark.timeout(300)
def test_replication_three_with_min_isr_two_takes_acks_all_writes_with_a_broker_down_and_min_isr_three_refuses(
        kafka_cluster: KafkaCluster) -> None:
    """The sensor plant's topic (3 partitions, RF 3, min.insync.replicas 2) from the manifest: every
    partition on the three brokers; with one broker stopped, idempotent acks=all writes still get
    acknowledged (two in sync). The same with min.insync.replicas 3 is refused: the topic config
    reaches the broker and is enforced."""
    ok, strict = f"sensor-data-{uuid.uuid4().hex[:6]}", f"strict-{uuid.uuid4().hex[:6]}"
    settings: dict[str, Any] = {
        "bootstrap": kafka_cluster.bootstrap, "confirm_publish": True,
        "producer": {"message.timeout.ms": 8000, "request.timeout.ms": 3000},
        "topics": {ok: {"partitions": 3, "replication": 3, "config": {"min.insync.replicas": "2"}},
                   strict: {"partitions": 1, "replication": 3, "config": {"min.insync.replicas": "3"}}}}
    _publish_confirmed(settings, ok)
    admin = kafka_cluster.admin()
    partitions = admin.list_topics(ok, timeout=10).topics[ok].partitions
    assert len(partitions) == 3 and all(sorted(p.replicas) == [0, 1, 2] for p in partitions.values())
    assert _topic_configs(admin, ok)["min.insync.replicas"] == "2"
    assert _topic_configs(admin, strict)["min.insync.replicas"] == "3"

    down = (kafka_cluster.leader_of(strict, 0) + 1) % 3  # a follower of the strict topic
    kafka_cluster.stop(down)
    deadline = time.monotonic() + 60
    while down in kafka_cluster.isr_of(strict, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    _publish_confirmed(settings, ok, count=6)  # min ISR 2 of RF 3: acknowledged with a broker down
    # the broker answers NOT_ENOUGH_REPLICAS, which librdkafka retries until message.timeout.ms (8 s here)
    with pytest.raises(TransportError, match="Message timed out"):
        _publish_confirmed(settings, strict, count=1)
