"""The Kafka transport's OpenTelemetry metrics, read with an in-memory metric reader: consumer lag
per topic/partition/group, rebalances by kind, produce errors; and the plant's meter provider
reaching the transport through the factory."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from forge_core import RealClock
from forge_core.transport import TransportContext
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from forge_kafka import KafkaTransport
from forge_kafka.settings import KafkaSettings
from forge_kafka.transport import kafka_factory
from forge_kafka.transport.metrics import LAG, PRODUCE_ERRORS, REBALANCES

from ..conftest import FAST, envelope, wait_until


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], float]]:
    """(attributes, value) of every data point of metric ``name`` now."""
    data = reader.get_metrics_data()
    found: list[tuple[dict[str, Any], float]] = []
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]  # type: ignore[union-attr]
    return found


def test_the_factory_hands_the_plants_meter_provider_to_the_transport(tmp_path: Path) -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    settings = KafkaSettings.load({"bootstrap": "127.0.0.1:1"})
    context = TransportContext(RealClock(), tmp_path, "plant", None, tmp_path, meter_provider=provider)
    with_metrics = kafka_factory("kafka", settings, context)
    without = kafka_factory("kafka", settings, TransportContext(RealClock(), tmp_path, "plant", None, tmp_path))
    assert with_metrics.connection.metrics is not None and without.connection.metrics is None
    # one set of instruments per provider, however many transports use it
    assert kafka_factory("other", settings, context).connection.metrics is with_metrics.connection.metrics


@pytest.mark.servers
@pytest.mark.timeout(180)
def test_lag_rebalances_and_produce_errors_are_recorded(kafka_bootstrap: str) -> None:
    topic = f"metrics{uuid.uuid4().hex[:6]}"
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    async def main() -> tuple[str, str]:
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, **FAST, "topics": {topic: {"partitions": 3}}},
                               plant=f"t{uuid.uuid4().hex[:6]}", meter_provider=provider)
        await kafka.connect()
        gate = asyncio.Event()
        handled: list[Any] = []

        async def handle(topic_: str, messages: list[Any]) -> None:
            await gate.wait()
            handled.extend(messages)

        try:
            sub = await kafka.subscribe_batch(topic, handle, group="g")
            await wait_until(lambda: len(sub.assignment()) == 3, 60)
            await kafka.publish(topic, envelope({"n": 0}))
            await wait_until(lambda: kafka.connection.stats["consumed"] == 1, 30)  # this batch holds the consumer
            for n in range(1, 31):
                await kafka.publish(topic, envelope({"n": n}, key=f"k{n % 9}"))
            assert await kafka.flush() == 0
            # what came behind the held batch is lag, per partition
            await wait_until(lambda: sum(v for _, v in points(reader, LAG)) == 30, 30)
            assert len([v for _, v in points(reader, LAG) if v > 0]) >= 2
            gate.set()
            await wait_until(lambda: len(handled) == 31, 60)
            await wait_until(lambda: {v for _, v in points(reader, LAG)} == {0}, 30)
            lag_points = points(reader, LAG)
            assert {a["messaging.destination.partition.id"] for a, _ in lag_points} == {"0", "1", "2"}
            assert {(a["messaging.destination.name"], a["messaging.consumer.group.name"], a["forge.transport"])
                    for a, _ in lag_points} == {(topic, sub.group_id, "kafka")}
            with pytest.raises(KafkaException, match="MSG_SIZE_TOO_LARGE"):
                await kafka.publish(topic, envelope({"blob": "x" * 2_000_000}))
            return sub.group_id, topic
        finally:
            gate.set()
            await kafka.close()

    group_id, _ = asyncio.run(main())
    rebalances = {(a["forge.kafka.rebalance.kind"], a["messaging.consumer.group.name"]): v
                  for a, v in points(reader, REBALANCES)}
    # assigned when it joined, revoked when it left (close)
    assert rebalances == {("assigned", group_id): 1, ("revoked", group_id): 1}
    [(attributes, count)] = points(reader, PRODUCE_ERRORS)
    assert count == 1 and attributes["error.type"] == "MSG_SIZE_TOO_LARGE"
    assert attributes["forge.kafka.outcome"] == "failed" and attributes["messaging.destination.name"] == topic
    assert points(reader, LAG) == [], "a closed transport's consumers are no longer observed"
