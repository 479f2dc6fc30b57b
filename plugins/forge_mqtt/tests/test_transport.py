"""MqttTransport beyond the conformance suite: the plugin's registration, settings, MQTT 3.1.1, the bus
on top, backpressure under max_inflight, local redelivery then undeliverable, the outbox before connect."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from forge_core import MessageBus, RealClock
from forge_core.plugin import SchemaRegistry, get_plugin_manager
from forge_core.transport import STRUCTURED_CONTENT_TYPE, TransportContext, TypeBinding

from forge_mqtt import MqttSettings, factory
from forge_mqtt.testing import MosquittoServer

READING = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["machineId", "value"],
    "properties": {"machineId": {"type": "integer"}, "value": {"type": "number"}, "title": {"type": "string"}},
}


def test_plugin_registers_the_transport_and_certificate_schemas() -> None:
    plugins = get_plugin_manager()
    plugins.collect()
    entry = plugins.transports.get("mqtt")
    assert entry.value is factory
    assert entry.schema is not None and entry.schema["properties"]["max_inflight"]["default"] == 1000
    assert "forge.death" in plugins.schemas and "forge.birth" in plugins.schemas


def test_factory_reads_the_manifest_settings(tmp_path: Path) -> None:
    context = TransportContext(RealClock(), tmp_path, "bakery", None, tmp_path / ".forge")
    settings = MqttSettings.load({"host": "broker.local", "port": 8883, "ca_file": "/etc/ca.pem"})
    transport = factory("edge", settings, context)
    assert transport.client_id == "forge-bakery-edge" and transport.broker == "broker.local:8883"
    assert transport.settings.tls and transport.data_dir == tmp_path / ".forge"
    assert transport.death_topic == "forge/death/forge-bakery-edge"


def test_mqtt_311_sends_the_plain_body_and_bindings_type_it(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                            kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "v3", protocol="3.1.1")
        await transport.connect()
        schemas = SchemaRegistry()
        schemas.add("oven.reading", READING)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"v3": transport},
                         bindings=[TypeBinding(topic="ovens/+/reading", type="oven.reading",
                                               source_field="machineId", key_field="machineId")])
        got: list[Any] = []
        raw: list[Any] = []
        await bus.subscribe("ovens/+/reading", got.append, owner="monitor")
        await transport.subscribe("ovens/#", lambda t, m: _append(raw, (t, m)))
        await asyncio.sleep(0.05)
        await bus.publish("ovens/1/reading", "oven.reading", {"machineId": 1, "value": 180.5}, source="oven-1")
        await kit.until(lambda: got and raw, 5)
        assert raw[0][1].headers == {} and raw[0][1].body == b'{"machineId":1,"value":180.5}'
        envelope = got[0]
        assert (envelope.type, envelope.source, envelope.key) == ("oven.reading", "1", "1")
        await transport.close()

    asyncio.run(body())


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_structured_mode_keeps_every_attribute_on_both_protocols(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                                 kit: Any, protocol: str) -> None:
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", protocol=protocol, content_mode="structured")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in", protocol=protocol)  # binary: reads both
        await sender.connect()
        await receiver.connect()
        schemas = SchemaRegistry()
        schemas.add("oven.reading", READING)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": sender, "in": receiver})
        got: list[Any] = []
        raw: list[Any] = []
        await bus.subscribe("ovens/#", got.append, owner="monitor", transport="in")
        await receiver.subscribe("ovens/#", lambda t, m: _append(raw, (t, m)))
        await asyncio.sleep(0.05)
        sent = await bus.publish("ovens/1", "oven.reading", {"machineId": 1, "value": 2.5}, source="oven-1",
                                 key="k1", headers={"tenant": "north"}, transport="out")
        # an invalid reading straight from the transport: structured events are validated on arrival too
        await sender.publish("ovens/2", kit.envelope({"machineId": "two"}, type_="oven.reading"))
        await kit.until(lambda: got and bus.dead_letters.total and len(raw) == 2, 5)
        assert len(got) == 1 and [letter.reason for letter in bus.dead_letters.recent] == ["invalid"]
        event = orjson.loads(raw[0][1].body)
        assert event["data"] == {"machineId": 1, "value": 2.5} and event["type"] == "oven.reading"
        assert raw[0][1].headers == ({"content-type": STRUCTURED_CONTENT_TYPE} if protocol == "5" else {})
        envelope = got[0]
        assert (envelope.type, envelope.id, envelope.source, envelope.key, envelope.headers["tenant"]) == (
            "oven.reading", sent.id, "oven-1", "k1", "north")
        assert envelope.time == pytest.approx(sent.time, abs=1e-6)  # RFC 3339 keeps microseconds
        await sender.close()
        await receiver.close()

    asyncio.run(body())


async def _append(items: list[Any], item: Any) -> None:
    items.append(item)


def test_bus_validates_what_arrives(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "v5")
        await transport.connect()
        schemas = SchemaRegistry()
        schemas.add("oven.reading", READING)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"v5": transport})
        got: list[Any] = []
        await bus.subscribe("ovens/#", got.append, owner="monitor")
        await asyncio.sleep(0.05)
        await bus.publish("ovens/1", "oven.reading", {"machineId": 1, "value": 1.0}, source="oven-1",
                          key="1", headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        # a foreign client publishes an invalid reading with Forge headers
        foreign = kit.envelope({"machineId": "one"}, type_="oven.reading")
        await transport.publish("ovens/2", foreign)
        await kit.until(lambda: got and bus.dead_letters.total, 5)
        assert got[0].payload == {"machineId": 1, "value": 1.0} and got[0].headers["traceparent"].startswith("00-")
        assert len(got) == 1
        assert [letter.reason for letter in bus.dead_letters.recent] == ["invalid"]
        await transport.close()

    asyncio.run(body())


def test_inflight_never_exceeds_max_inflight(tmp_path: Path, kit: Any) -> None:
    """5,000 QoS 1 publishes with max_inflight 20: publish waits for PUBACKs; nothing is lost.

    The broker's own queue per subscriber is unbounded here: Mosquitto's default
    (max_queued_messages 1000) drops QoS 1 messages for a subscriber that falls behind.
    """
    with MosquittoServer(base_dir=tmp_path / "broker", extra_config="max_queued_messages 0") as broker:
        asyncio.run(_burst(broker, tmp_path, kit))


async def _burst(broker: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    pub = kit.make_transport(broker, tmp_path / "p", "pub", max_inflight=20)
    sub = kit.make_transport(broker, tmp_path / "s", "sub")
    await pub.connect()
    await sub.connect()
    inbox = kit.Collector()
    await sub.subscribe("burst/#", inbox)
    await asyncio.sleep(0.05)
    highest = 0
    for n in range(5000):
        await pub.publish("burst/a", kit.envelope({"n": n}))
        highest = max(highest, pub.health().stats["inflight"])
    assert highest <= 20
    assert pub._client is not None and pub._client.max_inflight_messages == 20
    await inbox.wait_for(5000, 30)
    assert [p["n"] for p in inbox.payloads] == list(range(5000))
    await kit.until(lambda: pub.health().stats["inflight"] == 0, 5)
    await pub.close()
    await sub.close()


def test_raising_callback_is_redelivered_locally_then_undeliverable(mosquitto_server: MosquittoServer,
                                                                   tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "redeliver", max_redeliveries=2)
        await transport.connect()
        attempts: list[Any] = []
        given_up: list[tuple[str, Any, BaseException]] = []
        transport.on_undeliverable = lambda topic, raw, exc: given_up.append((topic, raw, exc))

        async def always_fails(topic: str, message: Any) -> None:
            attempts.append(message.body)
            if b'"poison"' in message.body:
                raise ValueError("cannot handle")

        await transport.subscribe("jobs/#", always_fails)
        await asyncio.sleep(0.05)
        await transport.publish("jobs/1", kit.envelope("poison"))
        await transport.publish("jobs/2", kit.envelope("fine"))
        await kit.until(lambda: len(attempts) >= 4, 5)
        await asyncio.sleep(0.3)
        assert attempts == [b'"poison"'] * 3 + [b'"fine"']  # 1 + max_redeliveries, then the next one
        assert [(t, str(e)) for t, _, e in given_up] == [("jobs/1", "cannot handle")]
        stats = transport.health().stats
        assert (stats["redelivered"], stats["undeliverable"], stats["delivered"]) == (2, 1, 1)
        await transport.close()

    asyncio.run(body())


def test_publishes_before_the_first_connect_wait_in_the_outbox(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                               kit: Any) -> None:
    async def body() -> None:
        early = kit.make_transport(mosquitto_server, tmp_path / "e", "early")
        for n in range(10):
            await early.publish("early/x", kit.envelope({"n": n}))
        assert early.health().stats["outbox_depth"] == 10
        assert (tmp_path / "e" / "outbox-early.db").exists()
        sub = kit.make_transport(mosquitto_server, tmp_path / "s", "sub")
        await sub.connect()
        inbox = kit.Collector()
        await sub.subscribe("early/#", inbox)
        await asyncio.sleep(0.05)
        await early.connect()
        await inbox.wait_for(10, 5)
        assert [p["n"] for p in inbox.payloads] == list(range(10))
        await kit.until(lambda: early.health().stats["outbox_depth"] == 0, 5)
        await early.close()
        await sub.close()

    asyncio.run(body())


def test_user_properties_follow_the_cloudevents_mqtt_binding(mosquitto_server: MosquittoServer, tmp_path: Path,
                                                             kit: Any) -> None:
    """A plain paho client sees bare attribute names as user properties and the JSON content type."""
    seen: list[mqtt.MQTTMessage] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: seen.append(m)
    client.connect(mosquitto_server.host, mosquitto_server.port)
    client.subscribe("ce/#", qos=1)
    client.loop_start()
    try:
        async def body() -> None:
            transport = kit.make_transport(mosquitto_server, tmp_path, "ce")
            await transport.connect()
            await asyncio.sleep(0.1)
            await transport.publish("ce/1", kit.envelope({"a": 1}, key="k1", source="oven-1"))
            await kit.until(lambda: seen, 5)
            await transport.close()

        asyncio.run(body())
    finally:
        client.loop_stop()
        client.disconnect()
    message = seen[0]
    props = dict(message.properties.UserProperty)
    assert {"specversion", "id", "source", "type", "time", "partitionkey"} <= set(props)
    assert props["source"] == "oven-1" and props["partitionkey"] == "k1"
    assert message.properties.ContentType == "application/json" and message.payload == b'{"a":1}'
    assert message.qos == 1


def test_close_waits_for_pubacks(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "closer")
        await transport.connect()
        for n in range(500):
            await transport.publish("closing/x", kit.envelope({"n": n}))
        started = time.monotonic()
        await transport.close()
        assert time.monotonic() - started < 5
        assert transport.health().stats["inflight"] == 0
        assert not transport.health().connected and transport.health().detail == "closed"

    asyncio.run(body())
