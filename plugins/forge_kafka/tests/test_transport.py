"""KafkaTransport behaviour beyond the shared contract: not-ready, dead-letter topic, topic
mapping and creation, keys, health, settings errors, plugin registration, batch subscriptions."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from forge_core import Envelope, RawMessage, SettingsError, TransportNotReady
from forge_core.testing import find_free_port
from forge_core.transport import STRUCTURED_CONTENT_TYPE

from forge_kafka import BridgeParams, KafkaSettings, KafkaTransport, TopicSpec, pattern_to_kafka, to_forge, to_kafka
from forge_kafka.transport import DLQ_ERROR, DLQ_REASON, DLQ_TOPIC

pytestmark = pytest.mark.timeout(120)


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


def test_topic_mapping_is_slash_to_dot_and_refuses_what_cannot_map() -> None:
    assert to_kafka("plant/m1/reading") == "plant.m1.reading"
    assert to_forge("plant.m1.reading") == "plant/m1/reading"
    assert pattern_to_kafka("plant/+/reading") == r"^plant\.[^.]+\.reading$"
    assert pattern_to_kafka("plant/#") == r"^plant(\..+)?$"
    assert pattern_to_kafka("plant/m1") == "plant.m1"
    for bad in ("plant/m.1", "plant/m 1", "plant//x"):
        with pytest.raises(ValueError, match="cannot"):
            to_kafka(bad)


def test_settings_errors_name_the_transport_and_field() -> None:
    with pytest.raises(SettingsError, match=r"transports\.orders\.settings\.bootstrap: required key is missing"):
        KafkaSettings.load({}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"transports\.orders\.settings\.bootstrp: unknown key"):
        KafkaSettings.load({"bootstrap": "x:1", "bootstrp": "y"}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"orders\.settings\.content_mode: .*'structured' or 'binary'"):
        KafkaSettings.load({"bootstrap": "x:1", "content_mode": "xml"}, where="transports.orders.settings")
    with pytest.raises(SettingsError, match=r"orders\.settings\.topics\.plant/x\.partitions"):
        KafkaTransport("orders", {"bootstrap": "x:1", "topics": {"plant/x": {"partitions": 0}}})
    with pytest.raises(SettingsError) as every:  # every problem at once, one error class
        KafkaSettings.load({"auto_offset_reset": "middle", "batch_size": 0})
    assert {path for path, _ in every.value.problems} == {"bootstrap", "auto_offset_reset", "batch_size"}


def test_settings_fill_defaults_and_keep_librdkafka_passthrough() -> None:
    settings = KafkaSettings.load({"bootstrap": "x:1", "topics": {"plant/orders": {"partitions": 3}},
                                   "config": {"security.protocol": "SSL"}, "consumer": {"fetch.min.bytes": 1}})
    assert settings.topics["plant/orders"] == TopicSpec(partitions=3, replication=1, config={})
    assert settings.topic_spec("plant/other") == TopicSpec(partitions=1, replication=1)
    assert settings.config == {"security.protocol": "SSL"} and settings.consumer == {"fetch.min.bytes": 1}
    transport = KafkaTransport("k", settings, plant="p")
    assert transport.settings is settings
    assert transport._common_config()["security.protocol"] == "SSL"
    schema = KafkaSettings.json_schema()  # what forge validate checks the manifest against
    assert schema["required"] == ["bootstrap"] and schema["additionalProperties"] is False
    assert schema["properties"]["max_redeliveries"]["default"] == 3


def test_unreachable_broker_is_not_ready_naming_the_broker() -> None:
    port = find_free_port()

    async def body() -> None:
        transport = KafkaTransport("orders", bootstrap=f"127.0.0.1:{port}", connect_timeout=1.0)
        with pytest.raises(TransportNotReady, match=rf"'orders': broker 127\.0\.0\.1:{port} unreachable"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_failing_handler_is_retried_then_dead_lettered_with_reason_and_committed(make_transport: Any,
                                                                                 kafka_bootstrap: str,
                                                                                 mode: str) -> None:
    topic = f"dlq{uuid.uuid4().hex[:6]}/m1/reading"
    calls: list[str] = []

    async def handler(topic_: str, message: Envelope | RawMessage) -> None:
        calls.append(topic_)
        assert isinstance(message, RawMessage)
        if b"poison" in message.body:
            raise RuntimeError("cannot handle poison")

    async def body() -> tuple[dict[str, Any], int]:
        transport = make_transport(max_redeliveries=2, content_mode=mode)
        await transport.connect()
        await transport.subscribe(topic, handler, owner="worker")
        await transport.publish(topic, envelope({"poison": True}))
        await transport.publish(topic, envelope({"fine": True}))
        await wait_until(lambda: transport.health().stats.get("dead_lettered") == 1 and len(calls) == 4)
        stats = dict(transport.health().stats)
        await transport.close()
        return stats, len(calls)

    stats, count = asyncio.run(body())
    assert count == 4  # poison: 1 + 2 redeliveries; fine: 1
    assert stats["redelivered"] == 2 and stats["undeliverable"] == 1 and stats["handled"] == 1
    records = read_topic(kafka_bootstrap, to_kafka(topic) + ".dlq", 1)
    record = records[0] if records else None
    assert record is not None
    headers = {k: v.decode() for k, v in record.headers()}
    assert headers[DLQ_REASON] == "undeliverable" and "cannot handle poison" in headers[DLQ_ERROR]
    assert headers[DLQ_TOPIC] == to_kafka(topic)
    if mode == "binary":  # the record as it was: plain JSON value, attributes in ce_ headers
        assert record.value() == b'{"poison":true}' and headers["ce_type"] == "test.reading"
    else:  # one CloudEvents JSON document, marked by its content type
        event = orjson.loads(record.value())
        assert event["data"] == {"poison": True} and event["type"] == "test.reading"
        assert headers["content-type"] == STRUCTURED_CONTENT_TYPE

    assert stats["consumed"] == 2  # the poison record did not block the one behind it


def test_key_is_the_envelope_key_or_source_and_topics_are_created(make_transport: Any,
                                                                  kafka_bootstrap: str) -> None:
    prefix = f"keys{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        transport = make_transport(topics={f"{prefix}/orders": {"partitions": 3}})
        await transport.connect()
        await transport.publish(f"{prefix}/orders", envelope({"n": 1}, key="order-7"))
        await transport.publish(f"{prefix}/orders", envelope({"n": 2}, source="machine-3"))
        assert await transport.flush() == 0
        await transport.close()

    asyncio.run(body())
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=5)
    assert len(metadata.topics[f"{prefix}.orders"].partitions) == 3
    keys = {record.key() for record in read_topic(kafka_bootstrap, f"{prefix}.orders", 2)}
    assert keys == {b"order-7", b"machine-3"}


def test_health_reports_connection_counts_and_lag(make_transport: Any) -> None:
    topic = f"health{uuid.uuid4().hex[:6]}/x"

    async def body() -> None:
        transport = make_transport()
        assert not transport.health().connected
        await transport.connect()
        got: list[str] = []

        async def handler(t: str, m: Envelope | RawMessage) -> None:
            got.append(t)

        await transport.subscribe(topic, handler, owner="h")
        for n in range(5):
            await transport.publish(topic, envelope({"n": n}))
        await wait_until(lambda: len(got) == 5)
        health = transport.health()
        assert health.connected and "connected to 127.0.0.1" in health.detail
        assert health.stats["published"] == 5 and health.stats["handled"] == 5
        assert health.stats["subscriptions"] == 1 and health.stats.get("lag", 0) == 0
        await transport.close()
        assert transport.health().detail == "closed"

    asyncio.run(body())


def test_group_id_follows_the_template() -> None:
    transport = KafkaTransport("k", bootstrap="x:1", plant="pasta")
    assert transport.group_id("productionPlan/+", None, "scheduler-1") == "pasta.scheduler-1:productionPlan/+"
    assert transport.group_id("orders", "scheduler", "scheduler-2") == "pasta.scheduler:orders"
    custom = KafkaTransport("k", bootstrap="x:1", plant="pasta", group_template="{group}")
    assert custom.group_id("orders", "billing", None) == "billing"


def test_plugin_registers_transport_and_bridge() -> None:
    from forge_core.plugin import ComponentRegistry, TransportRegistry

    from forge_kafka import plugin

    transports, components = TransportRegistry(), ComponentRegistry()
    plugin.forge_register_transports(transports)
    plugin.forge_register_components(components)
    assert "kafka" in transports and "kafka.bridge" in components
    entry = transports.get("kafka")  # the runtime's path: the declared model, defaults filled, to the factory
    settings = entry.build_settings({"bootstrap": "x:1"}, where="transports.k.settings")
    assert isinstance(settings, KafkaSettings) and settings.batch_size == 500
    context = SimpleNamespace(plant="pasta")
    transport = entry.value("k", settings, context)
    assert isinstance(transport, KafkaTransport) and transport.settings is settings and transport.plant == "pasta"
    assert components.get("kafka.bridge").settings is BridgeParams


def test_batch_subscription_gets_fetched_runs_in_order_and_commits_after_the_callback(make_transport: Any) -> None:
    topic = f"batch{uuid.uuid4().hex[:6]}/m1/reading"
    runs: list[list[int]] = []

    async def on_batch(topic_: str, messages: list[Envelope | RawMessage]) -> None:
        assert topic_ == topic
        runs.append([orjson.loads(m.body)["data"]["n"] for m in messages])  # type: ignore[union-attr]

    async def body() -> list[int]:
        transport = make_transport(batch_size=100)
        await transport.connect()
        await transport.publish_batch(topic, [envelope({"n": n}, key="m1") for n in range(300)])
        assert await transport.flush() == 0
        await transport.subscribe_batch(topic, on_batch, owner="worker")  # the backlog arrives in runs
        await wait_until(lambda: sum(map(len, runs)) >= 300)
        await transport.close()
        again = make_transport()
        again.plant = transport.plant  # the same consumer group
        await again.connect()
        late: list[int] = []

        async def after(topic_: str, messages: list[Envelope | RawMessage]) -> None:
            late.append(len(messages))

        await again.subscribe_batch(topic, after, owner="worker")
        await again.publish(topic, envelope({"n": 300}, key="m1"))
        await wait_until(lambda: sum(late) >= 1)
        await asyncio.sleep(1.0)
        await again.close()
        return late

    late = asyncio.run(body())
    assert [n for run in runs for n in run] == list(range(300))
    assert max(map(len, runs)) > 1 and max(map(len, runs)) <= 100  # batch_size bounds a fetch
    assert late == [1]  # the group's committed offset is past the first 300: only the new record


def test_failing_batch_is_redelivered_whole_then_each_record_dead_lettered(make_transport: Any,
                                                                            kafka_bootstrap: str) -> None:
    topic = f"bdlq{uuid.uuid4().hex[:6]}/m1/reading"
    calls: list[list[bytes]] = []

    async def on_batch(topic_: str, messages: list[Envelope | RawMessage]) -> None:
        bodies = [m.body for m in messages]  # type: ignore[union-attr]
        calls.append(bodies)
        if any(b"poison" in b for b in bodies):
            raise RuntimeError("cannot handle poison")

    async def body() -> dict[str, Any]:
        transport = make_transport(max_redeliveries=2)
        await transport.connect()
        await transport.publish_batch(topic, [envelope({"n": 1}, key="m1"), envelope({"poison": True}, key="m1"),
                                              envelope({"n": 2}, key="m1")])
        await transport.subscribe_batch(topic, on_batch, owner="worker")
        await wait_until(lambda: transport.health().stats.get("handled", 0)
                         + transport.health().stats.get("dead_lettered", 0) == 3)
        stats = dict(transport.health().stats)
        await transport.close()
        return stats

    stats = asyncio.run(body())
    poisoned = [c for c in calls if any(b"poison" in b for b in c)]
    assert len(poisoned) == 3 and poisoned[0] == poisoned[1] == poisoned[2]  # 1 + 2 redeliveries, the whole run
    assert stats["dead_lettered"] == len(poisoned[0]) and stats["undeliverable"] == len(poisoned[0])
    records = read_topic(kafka_bootstrap, to_kafka(topic) + ".dlq", len(poisoned[0]))
    assert sorted(r.value() for r in records) == sorted(poisoned[0])  # each record of the failed run, as it was
    assert all("cannot handle poison" in dict(r.headers())[DLQ_ERROR].decode() for r in records)
