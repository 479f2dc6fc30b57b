"""MqttTransport as a whole: the factory, MQTT 3.1.1, structured mode on both protocols, the bus on
top, close waiting for PUBACKs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from forge_core import MessageBus, RealClock
from forge_core.plugin import SchemaRegistry
from forge_core.transport import STRUCTURED_CONTENT_TYPE, TransportContext, TypeBinding

from forge_mqtt import MqttSettings, factory
from forge_mqtt.testing import MosquittoServer

READING = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["machineId", "value"],
    "properties": {"machineId": {"type": "integer"}, "value": {"type": "number"}, "title": {"type": "string"}},
}

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
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in", protocol=protocol,
                                      content_mode="binary")  # a binary-mode receiver reads both
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


@pytest.mark.parametrize(("sender_mode", "receiver_mode"), [("structured", "binary"), ("binary", "structured"),
                                                              (None, None)])
def test_content_modes_interoperate_on_mqtt_5(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any,
                                              sender_mode: str | None, receiver_mode: str | None) -> None:
    """A receiver sniffs the body whatever its own content_mode: a structured sender and a binary one reach
    each other with every attribute (None: the default, structured on MQTT 5)."""
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out", content_mode=sender_mode)
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in", content_mode=receiver_mode)
        await sender.connect()
        await receiver.connect()
        assert sender.settings.structured == (sender_mode != "binary")
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
        await kit.until(lambda: got and raw, 5)
        if sender_mode == "binary":  # what was on the wire: the bare payload, attributes as user properties
            assert orjson.loads(raw[0][1].body) == {"machineId": 1, "value": 2.5}
            assert raw[0][1].headers["id"] == sent.id
        else:
            assert orjson.loads(raw[0][1].body)["id"] == sent.id
            assert raw[0][1].headers == {"content-type": STRUCTURED_CONTENT_TYPE}
        envelope = got[0]
        assert (envelope.type, envelope.id, envelope.source, envelope.key, envelope.headers["tenant"],
                envelope.payload) == ("oven.reading", sent.id, "oven-1", "k1", "north", {"machineId": 1, "value": 2.5})
        assert not bus.dead_letters.total
        await sender.close()
        await receiver.close()

    asyncio.run(body())


def test_plain_json_from_a_device_still_decodes_beside_structured_events(mosquitto_server: MosquittoServer,
                                                                         tmp_path: Path, kit: Any) -> None:
    """A plain MQTT 5 device (bare JSON, no properties) on a topic a structured Forge sender also uses:
    the receiver's binding types the device's message, the event keeps its own attributes."""
    import paho.mqtt.client as mqtt

    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "out")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "in")
        await sender.connect()
        await receiver.connect()
        schemas = SchemaRegistry()
        schemas.add("oven.reading", READING)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": sender, "in": receiver},
                         bindings=[TypeBinding(topic="ovens/+", type="oven.reading", source_field="machineId")])
        got: list[Any] = []
        await bus.subscribe("ovens/+", got.append, owner="monitor", transport="in")
        await asyncio.sleep(0.05)
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        device.connect(mosquitto_server.host, mosquitto_server.port)
        device.loop_start()
        try:
            device.publish("ovens/7", b'{"machineId":7,"value":1.5}', qos=1).wait_for_publish(5)
        finally:
            device.loop_stop()
            device.disconnect()
        sent = await bus.publish("ovens/1", "oven.reading", {"machineId": 1, "value": 2.5}, source="oven-1",
                                 transport="out")
        await kit.until(lambda: len(got) == 2, 5)
        by_topic = {e.topic: e for e in got}
        assert by_topic["ovens/7"].payload == {"machineId": 7, "value": 1.5} and by_topic["ovens/7"].source == "7"
        assert by_topic["ovens/1"].id == sent.id and by_topic["ovens/1"].source == "oven-1"
        assert not bus.dead_letters.total
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


def test_close_waits_for_pubacks(mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "closer")
        await transport.connect()
        for n in range(500):
            await transport.publish("closing/x", kit.envelope({"n": n}))
        await transport.close()  # a hang would be pytest-timeout's; the test asserts what close leaves
        assert transport.health().stats["inflight"] == 0
        assert not transport.health().connected and transport.health().detail == "closed"

    asyncio.run(body())
