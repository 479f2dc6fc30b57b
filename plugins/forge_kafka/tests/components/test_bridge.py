"""kafka.bridge with the in-memory transport standing in for MQTT and a real Kafka broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from forge_core import ComponentContext, Envelope, MessageBus, RealClock, SettingsError
from forge_core.plugin import SchemaRegistry
from forge_core.transport import MemoryTransport

from forge_kafka import Bridge, BridgeParams, KafkaTransport

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

OBJ = {"type": "object"}
TYPES = ["acme.assign_blade", "acme.swap_blade", "acme.kill_machine", "acme.heartbeat", "acme.secret"]


async def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_bridge_forwards_both_ways_refuses_others_and_never_loops(kafka_bootstrap: str) -> None:
    prefix = f"br{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        schemas = SchemaRegistry()
        for type_ in TYPES:
            schemas.add(type_, OBJ)
        mqtt = MemoryTransport("mqtt")
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, "session_timeout_ms": 2000,
                                         "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500}, plant=prefix)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"mqtt": mqtt, "kafka": kafka})
        await mqtt.connect()
        await kafka.connect()
        params = BridgeParams.load({
            "to_kafka": {"topics": [f"{prefix}/heartbeats/#", f"{prefix}/productionPlan/#"],
                         "types": ["acme.heartbeat"]},
            "to_mqtt": {"topics": [f"{prefix}/commands"],
                        "routes": {"acme.assign_blade": f"{prefix}/productionPlan/assignBlade",
                                   "acme.swap_blade": f"{prefix}/productionPlan/swapBlade",
                                   "acme.kill_machine": f"{prefix}/updateManager/killMachine"}},
        })
        ctx = ComponentContext(name="bridge", component="bridge", replica=0, replicas=1, params=params, bus=bus,
                               clock=RealClock(), transport="mqtt", seed=1)
        bridge = Bridge(ctx)
        await bridge.start()
        on_kafka: list[Envelope] = []
        on_mqtt: list[Envelope] = []
        await bus.subscribe(f"{prefix}/heartbeats/+", on_kafka.append, owner="kafka-reader", transport="kafka")
        await bus.subscribe(f"{prefix}/productionPlan/+", on_mqtt.append, owner="machine", transport="mqtt")

        # MQTT -> Kafka: same topic, envelope and headers carried across.
        sent = await bus.publish(f"{prefix}/heartbeats/m1", "acme.heartbeat", {"machineId": 1}, source="m1",
                                 key="m1", headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
                                 transport="mqtt")
        await wait_until(lambda: len(on_kafka) == 1)
        got = on_kafka[0]
        assert (got.id, got.source, got.key, got.payload) == (sent.id, "m1", "m1", {"machineId": 1})
        assert got.headers["traceparent"] == sent.headers["traceparent"] and got.headers["forgehops"] == "mqtt"

        # Kafka -> MQTT by type, to the type's topic; a type not in the routes is refused.
        await bus.publish(f"{prefix}/commands", "acme.assign_blade", {"machineId": 1, "blade": "b2"},
                          source="scheduler", transport="kafka")
        await bus.publish(f"{prefix}/commands", "acme.secret", {"x": 1}, source="scheduler", transport="kafka")
        await wait_until(lambda: bridge.counts["to_mqtt"] == 1 and bridge.counts["to_mqtt_refused"] == 1)
        await mqtt.drained()
        assert [(e.topic, e.type) for e in on_mqtt] == [(f"{prefix}/productionPlan/assignBlade",
                                                         "acme.assign_blade")]
        assert on_mqtt[0].headers["forgehops"] == "kafka"
        refused = [letter for letter in bus.dead_letters.recent if letter.reason == "refused"]
        assert refused and refused[-1].envelope is not None and refused[-1].envelope.type == "acme.secret"

        # The forwarded command is on productionPlan/#, which the bridge also carries to Kafka:
        # it has crossed from Kafka already, so it does not go back (no loop), and a type not
        # allowed towards Kafka is refused, not forwarded.
        await asyncio.sleep(1.0)
        assert bridge.counts["to_kafka_looped"] == 1 and bridge.counts["to_kafka"] == 1
        await bus.publish(f"{prefix}/productionPlan/other", "acme.swap_blade", {"machineId": 2}, source="ui",
                          transport="mqtt")
        await mqtt.drained()
        assert bridge.counts["to_kafka_refused"] == 1
        assert bridge.health()["to_mqtt"] == 1
        await ctx._release()
        await kafka.close()
        await mqtt.close()

    asyncio.run(body())


def test_bridge_params_fill_defaults_and_name_the_field_at_fault() -> None:
    params = BridgeParams.load({"to_mqtt": {"routes": {"a.b": "x/y"}}})
    assert (params.mqtt, params.kafka, params.to_kafka) == ("mqtt", "kafka", None)
    assert params.to_mqtt is not None and params.to_mqtt.topics == ["#"]
    with pytest.raises(SettingsError, match=r"components\.br\.params\.to_kafka\b.*topics and routes are both empty"):
        BridgeParams.load({"to_kafka": {"topics": []}}, where="components.br.params")
    with pytest.raises(SettingsError, match=r"to_mqtt\.routes: required key is missing"):
        BridgeParams.load({"to_mqtt": {}})
    # --only connects both sides, also when they are left to their defaults
    assert Bridge.uses_transports({"to_mqtt": {"routes": {}}}, ["mqtt", "kafka", "other"]) == {"mqtt", "kafka"}
    assert Bridge.uses_transports({"mqtt": "edge"}, ["edge", "kafka"]) == {"edge", "kafka"}


def test_route_keys_records_by_topic_level_and_fills_the_missing_field(kafka_bootstrap: str) -> None:
    """factory/+/heartbeat -> one Kafka topic, keyed by the factory id from the topic (its partition keeps
    that factory's order); a bare body gets factoryId from the topic, a body naming it keeps its own."""
    prefix = f"rt{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        schemas = SchemaRegistry()
        schemas.add("acme.heartbeat", OBJ)
        schemas.add("acme.secret", OBJ)
        schemas.add("acme.assign", OBJ)
        mqtt = MemoryTransport("mqtt")
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, "session_timeout_ms": 2000,
                                         "heartbeat_interval_ms": 500, "metadata_refresh_ms": 500}, plant=prefix)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"mqtt": mqtt, "kafka": kafka})
        await mqtt.connect()
        await kafka.connect()
        params = BridgeParams.load({"to_kafka": {
            "types": ["acme.heartbeat"],
            "routes": [{"topic": f"{prefix}/factory/+/heartbeat", "to": f"{prefix}.factory.heartbeat",
                        "key_from_level": 2, "field_from_level": {"factoryId": 2}}]},
            "to_mqtt": {"topics": [f"{prefix}/factory/+/orders"], "routes": {"acme.assign": "{topic}"}}})
        ctx = ComponentContext(name="bridge", component="bridge", replica=0, replicas=1, params=params, bus=bus,
                               clock=RealClock(), transport="mqtt", seed=1)
        bridge = Bridge(ctx)
        await bridge.start()
        on_kafka: list[Envelope] = []
        await bus.subscribe(f"{prefix}/factory/heartbeat", on_kafka.append, owner="monitor", transport="kafka")

        beat = {"timestamp": 1.5, "metrics": {"cpu": 10, "memory": 20, "errors": 0}}
        await bus.publish(f"{prefix}/factory/9/heartbeat", "acme.heartbeat", beat, source="plain", transport="mqtt")
        await bus.publish(f"{prefix}/factory/factory-2/heartbeat", "acme.heartbeat",
                          {**beat, "factoryId": "own"}, source="f2", key="other", transport="mqtt")
        await bus.publish(f"{prefix}/factory/3/heartbeat", "acme.secret", {"x": 1}, source="x", transport="mqtt")
        await wait_until(lambda: len(on_kafka) == 2 and bridge.counts["to_kafka_refused"] == 1)
        by_key = {e.key: e for e in on_kafka}
        assert set(by_key) == {"9", "factory-2"}, "the key is the topic level, whatever key the message had"
        assert by_key["9"].payload == {**beat, "factoryId": "9"} and by_key["9"].source == "plain"
        assert by_key["factory-2"].payload["factoryId"] == "own", "a field the body has is left alone"
        assert {e.topic for e in on_kafka} == {f"{prefix}/factory/heartbeat"}
        assert bridge.counts["to_kafka"] == 2 and bridge.counts["to_kafka_fields_filled"] == 1
        assert beat == {"timestamp": 1.5, "metrics": {"cpu": 10, "memory": 20, "errors": 0}}, "sender's body intact"

        # Towards MQTT, '{topic}' keeps each message's own topic: orders reach the factory they name.
        on_mqtt: list[Envelope] = []
        await bus.subscribe(f"{prefix}/factory/+/orders", on_mqtt.append, owner="factories", transport="mqtt")
        for factory in ("factory-1", "factory-2"):
            await bus.publish(f"{prefix}/factory/{factory}/orders", "acme.assign", {"factoryId": factory},
                              source="pms", transport="kafka")
        await wait_until(lambda: len(on_mqtt) == 2)
        assert sorted((e.topic, e.payload["factoryId"]) for e in on_mqtt) == [
            (f"{prefix}/factory/factory-1/orders", "factory-1"), (f"{prefix}/factory/factory-2/orders", "factory-2")]
        await ctx._release()
        await kafka.close()
        await mqtt.close()

    asyncio.run(body())


def test_route_params_name_levels_that_cannot_exist() -> None:
    route = {"topic": "factory/+/heartbeat", "to": "factory.heartbeat", "key_from_level": 1}
    params = BridgeParams.load({"to_kafka": {"routes": [route]}})
    assert params.to_kafka is not None and params.to_kafka.topics == []
    assert params.to_kafka.routes[0].to == "factory/heartbeat", "a Kafka name is read as its Forge topic"
    with pytest.raises(SettingsError, match=r"routes\.0.*key_from_level: level 3 is not in every topic"):
        BridgeParams.load({"to_kafka": {"routes": [{**route, "key_from_level": 3}]}}, where="components.br.params")
    with pytest.raises(SettingsError, match=r"field_from_level\.factoryId: level 1"):
        BridgeParams.load({"to_kafka": {"routes": [{"topic": "factory/#", "to": "f", "field_from_level":
                                                    {"factoryId": 1}}]}})
    with pytest.raises(SettingsError, match="topics and routes are both empty"):
        BridgeParams.load({"to_kafka": {}})
