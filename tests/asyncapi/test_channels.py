"""Topic shapes, addresses and parameters, message objects per wire."""

from __future__ import annotations

from forge_core.asyncapi.channels import Channel, headers_schema, message_of, safe_id, schema_format, shape
from forge_core.asyncapi.servers import Wire
from forge_core.messages.schemas import MessageSchema


def wire(protocol: str | None, **kw: object) -> Wire:
    return Wire("t", protocol or "memory", {}, protocol, **kw)  # type: ignore[arg-type]


def test_a_publishers_placeholder_and_a_subscribers_wildcard_are_one_channel() -> None:
    assert shape("forge/status/{source}") == shape("forge/status/+") == ("forge", "status", "+")
    channel = Channel("c", wire("mqtt"), shape("forge/status/+"))
    channel.learn("forge/status/+")
    assert channel.address() == "forge/status/{level3}"
    channel.learn("forge/status/{source}")
    assert channel.address() == "forge/status/{source}"
    rest = Channel("r", wire("kafka"), shape("a/b/#"))
    assert rest.address() == "a.b.{rest}"  # Kafka: '/' becomes '.'
    assert "any number" in rest.document(None, {})["parameters"]["rest"]["description"]


def test_ids_are_safe_map_keys() -> None:
    assert safe_id("mqtt/sensors/{sensor_id}/reading") == "mqtt.sensors.sensor_id.reading"
    assert safe_id("bus/a b$c") == "bus.a_b_c"


def test_schema_formats_follow_the_declared_draft() -> None:
    assert schema_format({"$schema": "https://json-schema.org/draft/2020-12/schema"}).endswith("version=2020-12")
    assert schema_format({}).endswith("version=draft-07")


def test_headers_by_wire() -> None:
    assert set(headers_schema(wire("kafka"))["properties"]) >= {"ce_id", "ce_type"}  # type: ignore[index]
    assert "id" in headers_schema(wire("mqtt"))["properties"]  # type: ignore[index]
    assert headers_schema(wire("mqtt", headers=False)) is None  # MQTT 3.1.1: body alone
    assert headers_schema(wire("kafka", content_mode="structured")) is None


def test_a_message_carries_its_schema_and_key() -> None:
    schema = MessageSchema("t.x", {"title": "X", "description": "An x.\nMore.", "type": "object"}, 2, "p", "o")
    message = message_of(schema, "t.x", wire("kafka"), "machine id")
    assert message["title"] == "X" and message["summary"] == "An x."
    assert message["payload"]["schema"]["type"] == "object"
    assert message["bindings"]["kafka"]["key"]["description"] == "record key: machine id"
    assert message["x-forge-schema"] == {"version": 2, "plugin": "p", "origin": "o"}
    unknown = message_of(None, "t.y", wire(None), None)
    assert "no schema registers 't.y'" in unknown["description"]
