"""Received MQTT 5 PUBLISH packets decoded in one pass (pure parsing; paho's public types only).

paho-mqtt 2 parses PUBLISH properties through its generic ``Properties`` class, which spends about
35 µs per property (name lookups with string replaces for every byte read): 270 µs for a message
carrying the seven CloudEvents attributes, more than everything else Forge does with it. This module
decodes the same packet in a few microseconds and hands paho's ``on_message`` the same
``MQTTMessage``; :class:`~forge_mqtt.transport.paho_adapter.FastClient` uses it for QoS 0 and 1 on
MQTT 5, and :func:`decode_publish_311` (no properties) on MQTT 3.1.1 and 3.1, and leaves every other case
(QoS 2, a paho without the hook) to paho.

The properties object answers the attributes paho's would (``ContentType``, ``UserProperty`` as a
list of pairs, ``SubscriptionIdentifier`` as a list, ...) and nothing is set that was not received.
"""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.exception import MalformedPacket

__all__ = ["ReceivedProperties", "decode_publish", "decode_publish_311"]

# MQTT 5 §3.3.2.3: the properties a PUBLISH may carry, by identifier.
_BYTE, _INT2, _INT4, _VARINT, _UTF8, _BINARY, _PAIR = range(7)
_PUBLISH_PROPERTIES: dict[int, tuple[str, int]] = {
    0x01: ("PayloadFormatIndicator", _BYTE),
    0x02: ("MessageExpiryInterval", _INT4),
    0x03: ("ContentType", _UTF8),
    0x08: ("ResponseTopic", _UTF8),
    0x09: ("CorrelationData", _BINARY),
    0x0B: ("SubscriptionIdentifier", _VARINT),
    0x23: ("TopicAlias", _INT2),
    0x26: ("UserProperty", _PAIR),
}


#: paho's names of the properties a received PUBLISH may carry.
_NAMES = ("ContentType", "CorrelationData", "MessageExpiryInterval", "PayloadFormatIndicator", "ResponseTopic",
          "SubscriptionIdentifier", "TopicAlias", "UserProperty")


class ReceivedProperties:
    """The properties of one received PUBLISH, with paho's attribute names and shapes.

    Beside them, always set (reading them never raises): ``content_type`` (the Content Type or None)
    and ``user_pairs`` (the user properties or None). Reading a property that was not received
    raises AttributeError, as paho's does, and a raised and caught AttributeError costs 1.5-3 µs
    here: the transport's delivery reads these two instead on every message.

    Read-only: messages that carried the same property bytes and no user property share one
    object (a stream's content type and subscription identifier are decoded once)."""

    __slots__ = (*_NAMES, "content_type", "user_pairs")

    ContentType: str
    CorrelationData: bytes
    MessageExpiryInterval: int
    PayloadFormatIndicator: int
    ResponseTopic: str
    SubscriptionIdentifier: list[int]
    TopicAlias: int
    UserProperty: list[tuple[str, str]]
    content_type: str | None
    user_pairs: list[tuple[str, str]] | None

    packetType = 3  # PacketTypes.PUBLISH, under paho's attribute name

    def names(self) -> list[str]:
        return [name for name in _NAMES if hasattr(self, name)]

    def json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names()}

    def __str__(self) -> str:
        return str(self.json())


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def _utf8(data: bytes | bytearray, pos: int) -> tuple[str, int]:
    length = (data[pos] << 8) | data[pos + 1]
    end = pos + 2 + length
    if end > len(data):
        raise MalformedPacket("UTF-8 string runs past the end of the properties")
    text = bytes(data[pos + 2:end]).decode("utf-8")  # strict: refuses surrogates [MQTT-1.5.4-1]
    if "\x00" in text or "\ufeff" in text:  # refused as paho refuses them [MQTT-1.5.4-2/3]
        raise MalformedPacket("UTF-8 string holds U+0000 or U+FEFF")
    return text, end


#: Decoded user properties by their bytes (name and value with their lengths, as on the wire).
_PAIRS: dict[bytes, tuple[str, str]] = {}
_MAX_PAIRS = 4096


def _properties(data: bytes | bytearray, pos: int, end: int) -> ReceivedProperties:
    props = ReceivedProperties()
    user: list[tuple[str, str]] | None = None
    idents: list[int] | None = None
    value: Any
    seen = 0  # the identifiers of the single-valued properties read so far, as bits
    props.content_type = None
    while pos < end:
        ident = data[pos]
        pos += 1
        try:
            name, kind = _PUBLISH_PROPERTIES[ident]
        except KeyError:
            raise MalformedPacket(f"property identifier {ident:#04x} is not allowed in PUBLISH") from None
        if kind == _PAIR:
            # The same pair arrives on every message of a stream (binary mode's source, type, ...):
            # its bytes are looked up before they are decoded and checked again.
            second = pos + 2 + ((data[pos] << 8) | data[pos + 1])
            stop = second + 2 + ((data[second] << 8) | data[second + 1])
            raw = bytes(data[pos:stop])
            pair = _PAIRS.get(raw)
            if pair is None:
                key, pos = _utf8(data, pos)
                value, pos = _utf8(data, pos)
                pair = (key, value)
                if len(_PAIRS) >= _MAX_PAIRS:  # bounded: the pairs that never repeat (id, time) refill it
                    _PAIRS.clear()
                _PAIRS[raw] = pair
            pos = stop
            if user is None:
                user = props.UserProperty = []
            user.append(pair)
            continue
        if kind == _UTF8:
            value, pos = _utf8(data, pos)
        elif kind == _VARINT:
            number, pos = _varint(data, pos)
            if idents is None:
                idents = props.SubscriptionIdentifier = []
            idents.append(number)
            continue
        elif kind == _BYTE:
            value, pos = data[pos], pos + 1
            if value > 1:  # the one byte property, PayloadFormatIndicator: 0 or 1, as paho refuses another
                raise MalformedPacket(f"{name} property value must be 0 or 1, got {value}")
        elif kind == _INT2:
            value, pos = (data[pos] << 8) | data[pos + 1], pos + 2
        elif kind == _INT4:
            value, pos = int.from_bytes(data[pos:pos + 4], "big"), pos + 4
        else:  # _BINARY
            length = (data[pos] << 8) | data[pos + 1]
            value, pos = bytes(data[pos + 2:pos + 2 + length]), pos + 2 + length
        bit = 1 << ident  # (not hasattr: asking for an unset slot raises inside, at 1.5-3 µs)
        if seen & bit:
            raise MalformedPacket(f"property {name} appears twice in PUBLISH")
        seen |= bit
        setattr(props, name, value)
        if ident == 0x03:
            props.content_type = value
    if pos != end:
        raise MalformedPacket("PUBLISH properties overrun their length")
    props.user_pairs = user
    return props


#: Decoded properties without user properties, by their bytes: one object shared by every message
#: that carried the same bytes (read-only, as everything that reads them treats them).
_SHARED: dict[bytes, ReceivedProperties] = {}
_MAX_SHARED = 256

_new_message = mqtt.MQTTMessage.__new__
_new_info = mqtt.MQTTMessageInfo.__new__
#: The one Condition of every received message's ``info``: nothing is ever published through it,
#: so nothing notifies it, and ``is_published()`` (which holds it) answers as paho's would.
_RECEIVED_CONDITION = threading.Condition()


def _received(mid: int, topic: bytes, header: int, qos: int, properties: ReceivedProperties | None,
              payload: bytes) -> mqtt.MQTTMessage:
    """``MQTTMessage(mid, topic)`` as ``decode_publish`` fills it, without the new ``threading.Condition``
    its ``info`` builds (2-3 µs a message here): that condition serves ``wait_for_publish()`` of an
    outgoing message, and paho never touches the ``info`` of a received one. Every slot is set (once)
    as paho's ``__init__`` and its decoder set it."""
    message = _new_message(mqtt.MQTTMessage)
    message.timestamp = 0.0
    message.state = mqtt.mqtt_ms_invalid
    message.dup = bool(header & 0x08)
    message.mid = mid
    message._topic = topic
    message.payload = payload
    message.qos = qos
    message.retain = bool(header & 0x01)
    info = _new_info(mqtt.MQTTMessageInfo)
    info.mid = mid
    info._published = False
    info.rc = mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    info._iterpos = 0
    info._condition = _RECEIVED_CONDITION
    message.info = info
    message.properties = properties  # type: ignore[assignment]
    return message


def _topic_and_mid(data: bytes, qos: int) -> tuple[bytes, int, int]:
    """A PUBLISH's topic, its packet id (0 at QoS 0) and where what follows them starts (both versions);
    IndexError if the packet ends first."""
    topic_len = (data[0] << 8) | data[1]
    pos = 2 + topic_len
    topic = data[2:pos]
    if len(topic) != topic_len:
        raise MalformedPacket("topic runs past the end of the packet")
    if not qos:
        return topic, 0, pos
    return topic, (data[pos] << 8) | data[pos + 1], pos + 2


def decode_publish(header: int, packet: bytes | bytearray) -> mqtt.MQTTMessage:
    """An MQTT 5 PUBLISH (``header``: first byte of the fixed header; ``packet``: the rest after
    the remaining length) as paho's ``MQTTMessage``; :class:`MalformedPacket` if it is not one."""
    qos = (header & 0x06) >> 1
    data = bytes(packet)  # one copy: its slices below are bytes (a bytearray's would be copied twice)
    try:
        topic, mid, pos = _topic_and_mid(data, qos)
        length = data[pos]
        if length & 0x80:  # (a property length of 128 bytes or more)
            length, pos = _varint(data, pos)
        else:
            pos += 1
        end = pos + length
        if end > len(data):
            raise MalformedPacket("PUBLISH properties run past the end of the packet")
        # The same property bytes arrive on every message of a stream (structured mode: the content
        # type and the subscription identifier): their decoded object is looked up by them and shared.
        raw = data[pos:end]
        properties = _SHARED.get(raw)
        if properties is None:
            properties = _properties(data, pos, end)
            if properties.user_pairs is None:  # user properties (binary mode's id, time) never repeat whole
                if len(_SHARED) >= _MAX_SHARED:
                    _SHARED.clear()
                _SHARED[raw] = properties
    except IndexError:
        raise MalformedPacket("PUBLISH packet too short") from None
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"PUBLISH property is not UTF-8: {exc}") from None
    return _received(mid, topic, header, qos, properties, data[end:])


def decode_publish_311(header: int, packet: bytes | bytearray) -> mqtt.MQTTMessage:
    """An MQTT 3.1.1 (or 3.1) PUBLISH, which has no properties, as paho's ``MQTTMessage`` (``properties``
    None, as paho leaves it); :class:`MalformedPacket` if it is not one (an empty topic too, as paho)."""
    qos = (header & 0x06) >> 1
    data = bytes(packet)
    try:
        topic, mid, pos = _topic_and_mid(data, qos)
        if not topic:
            raise MalformedPacket("topic can't be empty in MQTTv3")
    except IndexError:
        raise MalformedPacket("PUBLISH packet too short") from None
    return _received(mid, topic, header, qos, None, data[pos:])
