"""The one-pass PUBLISH decoders (MQTT 5, MQTT 3.1.1) give the same message as paho's and refuse what paho refuses."""

from __future__ import annotations

import struct
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from forge_mqtt.transport.decoder import decode_publish, decode_publish_311

# U+0000 and U+FEFF are refused in property strings (test_malformed_packets_are_refused)
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=40)

def publish_packet(topic: str, qos: int, mid: int, props: Properties, payload: bytes) -> tuple[int, bytes]:
    header = 0x30 | (qos << 1)
    topic_bytes = topic.encode()
    body = len(topic_bytes).to_bytes(2, "big") + topic_bytes
    if qos:
        body += mid.to_bytes(2, "big")
    return header, body + props.pack() + payload


@st.composite
def properties(draw: st.DrawFn) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    if draw(st.booleans()):
        props.ContentType = draw(text)
    if draw(st.booleans()):
        props.PayloadFormatIndicator = draw(st.integers(0, 1))
    if draw(st.booleans()):
        props.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        props.ResponseTopic = draw(text)
    if draw(st.booleans()):
        props.CorrelationData = draw(st.binary(max_size=20))
    pairs = draw(st.lists(st.tuples(text, text), max_size=10))
    if pairs:
        props.UserProperty = pairs
    idents = draw(st.lists(st.integers(1, 268_435_455), max_size=3))
    for ident in idents:
        props.SubscriptionIdentifier = ident  # paho appends: the property may repeat
    return props


@settings(max_examples=300, deadline=None)
@given(topic=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), qos=st.integers(0, 1),
       mid=st.integers(1, 65535), props=properties(), payload=st.binary(max_size=200), dup=st.booleans(),
       retain=st.booleans())
def test_same_message_as_paho(topic: str, qos: int, mid: int, props: Properties, payload: bytes, dup: bool,
                              retain: bool) -> None:
    header, packet = publish_packet(topic, qos, mid, props, payload)
    header |= (0x08 if dup else 0) | (0x01 if retain else 0)
    theirs = _packet.decode_publish(header, bytearray(packet), mqtt.MQTTv5)
    ours = decode_publish(header, bytearray(packet))
    # the two fields delivery reads on every message, always set: the same values, or None
    mine: Any = ours.properties
    assert mine.content_type == getattr(theirs.properties, "ContentType", None)
    assert mine.user_pairs == (getattr(theirs.properties, "UserProperty", None) or None)
    assert (ours.topic, ours.qos, ours.mid, ours.dup, ours.retain, ours.payload) == (
        theirs.topic.decode(), theirs.qos, theirs.mid if qos else 0, theirs.dup, theirs.retain, theirs.payload)
    names = [name.replace(" ", "") for name in theirs.properties.names]  # paho's keys have spaces
    expected = {name: getattr(theirs.properties, name) for name in names if hasattr(theirs.properties, name)}
    assert ours.properties.json() == expected  # type: ignore[attr-defined]
    # every slot of paho's own MQTTMessage is set, as its __init__ sets it (info without its Condition)
    plain = mqtt.MQTTMessage(ours.mid, topic.encode())
    assert (ours.state, ours.timestamp, ours.info.mid, ours.info.rc, ours.info.is_published()) == (
        plain.state, plain.timestamp, plain.info.mid, plain.info.rc, plain.info.is_published())


@settings(max_examples=300, deadline=None)
@given(topic=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30), qos=st.integers(0, 1),
       mid=st.integers(1, 65535), payload=st.binary(max_size=200), dup=st.booleans(), retain=st.booleans())
def test_same_message_as_paho_on_311(topic: str, qos: int, mid: int, payload: bytes, dup: bool, retain: bool) -> None:
    """MQTT 3.1.1 has no properties: the payload follows the topic (and the mid), ``properties`` is None."""
    topic_bytes = topic.encode()
    packet = len(topic_bytes).to_bytes(2, "big") + topic_bytes + (mid.to_bytes(2, "big") if qos else b"") + payload
    header = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    theirs = _packet.decode_publish(header, bytearray(packet), mqtt.MQTTv311)
    ours = decode_publish_311(header, bytearray(packet))
    assert (ours.topic, ours.qos, ours.mid, ours.dup, ours.retain, ours.payload, ours.properties) == (
        theirs.topic.decode(), theirs.qos, theirs.mid, theirs.dup, theirs.retain, theirs.payload, theirs.properties)
    plain = mqtt.MQTTMessage(ours.mid, topic_bytes)
    assert (ours.state, ours.timestamp, ours.info.mid, ours.info.rc, ours.info.is_published()) == (
        plain.state, plain.timestamp, plain.info.mid, plain.info.rc, plain.info.is_published())


@pytest.mark.parametrize(("header", "packet"), [
    (0x30, b"\x00"),  # shorter than its topic length
    (0x30, b"\x00\x05ab"),  # topic runs past the end
    (0x30, b"\x00\x00{}"),  # an empty topic, which 3.1.1 does not allow
    (0x32, b"\x00\x01t\x00"),  # QoS 1 with half a packet identifier
], ids=["short", "topic", "empty-topic", "mid"])
def test_malformed_311_packets_are_refused(header: int, packet: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_publish_311(header, bytearray(packet))
    with pytest.raises((MalformedPacket, struct.error)):  # paho refuses them too (some as a struct.error)
        _packet.decode_publish(header, bytearray(packet), mqtt.MQTTv311)


@pytest.mark.parametrize("packet", [
    b"\x00",  # shorter than its topic length
    b"\x00\x05ab",  # topic runs past the end
    b"\x00\x01t\x09\x03\x00\x10abc",  # properties longer than the packet
    b"\x00\x01t\x03\x02\x00\x00",  # a four-byte property with two bytes
    b"\x00\x01t\x01\x7f",  # an identifier PUBLISH may not carry
    b"\x00\x01t\x04\x03\x00\x02\xff\xfe",  # content type that is not UTF-8
    b"\x00\x01t\x05\x03\x00\x02a\x00",  # U+0000 in a string [MQTT-1.5.4-2]
    b"\x00\x01t\x06\x03\x00\x03\xef\xbb\xbf",  # U+FEFF, which paho refuses too
    b"\x00\x01t\x06\x03\x00\x03\xed\xa0\x80",  # an encoded surrogate [MQTT-1.5.4-1]
], ids=["short", "topic", "props-length", "int4", "identifier", "utf8", "null", "bom", "surrogate"])
def test_malformed_packets_are_refused(packet: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_publish(0x30, bytearray(packet))
    with pytest.raises(MalformedPacket):  # paho's own decoder agrees
        _packet.decode_publish(0x30, bytearray(packet), mqtt.MQTTv5)


def test_a_repeated_single_property_is_refused() -> None:
    body = b"\x00\x01t" + b"\x04" + b"\x01\x01\x01\x00"  # PayloadFormatIndicator twice
    with pytest.raises(MalformedPacket, match="twice"):
        decode_publish(0x30, bytearray(body))


def test_a_user_property_seen_before_is_the_same_and_a_cut_one_still_refused() -> None:
    """Pairs are kept by their bytes once decoded: the next message with them gets the same pairs, and
    a packet cut inside such a pair is still malformed (it cannot match a whole pair's bytes)."""
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("source", "machine-7"), ("type", "pasta.heartbeat"), ("id", "é-1")]
    header, packet = publish_packet("t/x", 1, 7, props, b"{}")
    first, second = decode_publish(header, bytearray(packet)), decode_publish(header, bytearray(packet))
    assert first.properties.UserProperty == second.properties.UserProperty == props.UserProperty
    for cut in range(6, len(packet) - 2):  # inside the properties: each cut refused
        with pytest.raises(MalformedPacket):
            decode_publish(header, bytearray(packet[:cut]))
    # a properties length that ends inside the last pair (whole in the packet, and known): refused
    start = 2 + 3 + 2  # topic length, "t/x", mid
    length = props.pack()[0]  # one byte: the properties are short
    short = packet[:start] + bytes([length - 3]) + packet[start + 1:]
    with pytest.raises(MalformedPacket):
        decode_publish(header, bytearray(short))


def test_a_streams_repeated_properties_are_decoded_once_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    from forge_mqtt.transport import decoder

    monkeypatch.setattr(decoder, "_SHARED", {})
    structured = Properties(PacketTypes.PUBLISH)
    structured.ContentType = "application/cloudevents+json"
    structured.SubscriptionIdentifier = 7
    first, second = (decode_publish(*publish_packet("t", 1, mid, structured, b"{}")) for mid in (1, 2))
    mine: Any = first.properties
    assert second.properties is mine and (first.mid, second.mid) == (1, 2)
    assert (mine.content_type, mine.SubscriptionIdentifier, mine.user_pairs) == (
        "application/cloudevents+json", [7], None)
    other = Properties(PacketTypes.PUBLISH)
    other.ContentType = "application/cloudevents+json"
    other.SubscriptionIdentifier = 8  # another subscription: other bytes, its own object
    assert decode_publish(*publish_packet("t", 1, 3, other, b"{}")).properties.SubscriptionIdentifier == [8]  # type: ignore[union-attr]
    binary = Properties(PacketTypes.PUBLISH)
    binary.UserProperty = [("id", "1")]
    one, two = (decode_publish(*publish_packet("t", 1, mid, binary, b"{}")) for mid in (4, 5))
    assert one.properties is not two.properties  # user properties: never shared
    monkeypatch.setattr(decoder, "_MAX_SHARED", 2)
    for ident in range(1, 6):
        props = Properties(PacketTypes.PUBLISH)
        props.SubscriptionIdentifier = ident
        assert decode_publish(*publish_packet("t", 0, 0, props, b"")).properties.SubscriptionIdentifier == [ident]  # type: ignore[union-attr]
    assert len(decoder._SHARED) <= 2
