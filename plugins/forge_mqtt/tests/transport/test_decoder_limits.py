"""Odd but legal MQTT 5 PUBLISH packets at the protocol's limits: the one-pass decoder (which may run compiled,
docs/compiled.md) gives what paho's own decoder gives, pure and compiled alike."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.exception import MalformedPacket

from forge_mqtt.transport.decoder import decode_publish, decode_publish_311


def utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def packet(props: bytes, *, topic: bytes = b"a/b", qos: int = 1, mid: int = 65535, payload: bytes = b"x") -> bytes:
    length = len(props)
    varint = bytes([length]) if length < 128 else bytes([(length & 0x7F) | 0x80, length >> 7])
    return len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"") + varint + props + payload


PROPERTIES = {
    "none": b"",
    "empty-content-type": b"\x03" + utf8(""),
    "astral-content-type": b"\x03" + utf8("☃/\U0001d11e"),
    "max-expiry": b"\x02\xff\xff\xff\xff",
    "format-indicator-1": b"\x01\x01",
    "max-topic-alias": b"\x23\xff\xff",
    "max-subscription-id": b"\x0b\xff\xff\xff\x7f",
    "two-subscription-ids": b"\x0b\x01\x0b\x80\x01",
    "empty-correlation": b"\x09\x00\x00",
    "empty-user-pair": b"\x26" + utf8("") + utf8(""),
    "repeated-user-pair": (b"\x26" + utf8("k") + utf8("v")) * 3,
    "two-byte-length": b"".join(b"\x26" + utf8(f"k{i}") + utf8("v" * 20) for i in range(10)),
    "response-topic": b"\x08" + utf8("r/t") + b"\x09\x00\x03\x00\xff\x01",
}


def same_as_paho(header: int, body: bytes) -> Any:
    ours = decode_publish(header, bytearray(body))
    theirs = _packet.decode_publish(header, bytearray(body), mqtt.MQTTv5)
    assert (ours.topic, ours.qos, ours.mid, ours.dup, ours.retain, ours.payload) == (
        theirs.topic.decode(), theirs.qos, theirs.mid if ours.qos else 0, theirs.dup, theirs.retain, theirs.payload)
    names = [name.replace(" ", "") for name in theirs.properties.names]
    assert ours.properties.json() == {  # type: ignore[union-attr]
        name: getattr(theirs.properties, name) for name in names if hasattr(theirs.properties, name)}
    mine: Any = ours.properties
    assert mine.content_type == getattr(theirs.properties, "ContentType", None)
    assert mine.user_pairs == (getattr(theirs.properties, "UserProperty", None) or None)
    return ours


@pytest.mark.parametrize("qos", [0, 1])
@pytest.mark.parametrize("name", list(PROPERTIES))
def test_properties_at_their_limits_decode_as_paho_decodes_them(name: str, qos: int) -> None:
    same_as_paho(0x30 | (qos << 1) | 0x08 | 0x01, packet(PROPERTIES[name], qos=qos))


@pytest.mark.parametrize(("topic", "payload"), [(b"t" * 65535, b""), (b"", b"{}"), ("é/☃".encode(), b"\x00" * 1000)],
                         ids=["longest-topic-no-payload", "empty-topic-with-alias", "utf8-topic"])
def test_topics_and_payloads_at_their_limits(topic: bytes, payload: bytes) -> None:
    props = b"\x23\x00\x01" if not topic else b""
    message = same_as_paho(0x32, packet(props, topic=topic, payload=payload))
    assert message.payload == payload and message.mid == 65535


@pytest.mark.parametrize("props", [
    b"\x0b\xff\xff\xff\xff\x01",  # a subscription identifier longer than 4 bytes
    b"\x03" + utf8("a") + b"\x03" + utf8("b"),  # a single-valued property twice
    b"\x02\xff",  # four-byte property with one byte
    b"\x01\x02",  # a payload format indicator other than 0 or 1 (paho refuses it too)
    b"\x26" + utf8("\ufeff") + utf8("v"),  # U+FEFF in a user property
], ids=["varint-5", "twice", "int4-cut", "format-2", "bom-pair"])
def test_malformed_at_the_limits_is_refused(props: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_publish(0x32, bytearray(packet(props)))


def test_311_at_the_limits() -> None:
    message = decode_publish_311(0x3B, bytearray(b"\x00\x03a/b\xff\xffpayload"))
    assert (message.topic, message.mid, message.qos, message.dup, message.retain, message.payload) == (
        "a/b", 65535, 1, True, True, b"payload")
    with pytest.raises(MalformedPacket):
        decode_publish_311(0x32, bytearray(b"\x00\x01a\x01"))
