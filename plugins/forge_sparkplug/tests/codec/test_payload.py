"""Payloads, datatypes and topics on the wire."""

from __future__ import annotations

import pytest

from forge_sparkplug.codec import (
    BY_NAME,
    DatatypeError,
    Metric,
    PayloadError,
    TopicError,
    decode,
    encode,
    parse,
    read_state,
    state_body,
)
from forge_sparkplug.codec.datatypes import from_wire, to_wire


@pytest.mark.parametrize(("datatype", "value"), [
    ("Int8", -128), ("Int8", 127), ("Int16", -300), ("Int32", -(2**31)), ("Int64", -(2**63)), ("UInt8", 255),
    ("UInt16", 65535), ("UInt32", 2**32 - 1), ("UInt64", 2**64 - 1), ("Float", 1.5), ("Double", -2.25),
    ("Boolean", True), ("String", "héllo"), ("Text", "x"), ("UUID", "7f8e"), ("DateTime", 1_700_000_000_123),
    ("Bytes", "AAEC"), ("File", "aGk="),
])
def test_every_supported_datatype_survives_the_round_trip(datatype: str, value: object) -> None:
    number = BY_NAME[datatype]
    body = encode(1000, [Metric(name="m", alias=7, datatype=number, value=value, timestamp=999)], seq=3)
    payload = decode(body)
    assert payload.seq == 3 and payload.timestamp == 1000
    (metric,) = payload.metrics
    assert (metric.name, metric.alias, metric.datatype, metric.value, metric.timestamp) == ("m", 7, number, value, 999)


def test_signed_integers_are_two_s_complement_of_their_width_and_read_from_a_sign_extension_too() -> None:
    assert to_wire(1, -1) == 255 and to_wire(3, -1) == 2**32 - 1 and to_wire(4, -1) == 2**64 - 1
    assert from_wire(1, 255) == -1 and from_wire(1, 2**32 - 1) == -1 and from_wire(2, 2**32 - 2) == -2


@pytest.mark.parametrize(("datatype", "value"), [("Int8", 128), ("UInt8", -1), ("Int32", 1.5), ("Boolean", 1),
                                                 ("String", 3), ("Double", "x"), ("Bytes", "not base64!")])
def test_a_value_the_datatype_cannot_carry_is_refused_naming_the_metric(datatype: str, value: object) -> None:
    with pytest.raises(DatatypeError, match="'speed'"):
        encode(0, [Metric(name="speed", datatype=BY_NAME[datatype], value=value)])


def test_data_metrics_by_alias_are_read_with_the_birth_s_datatypes() -> None:
    body = encode(5, [Metric(alias=2, value=21.5)], seq=1, datatype_of={2: BY_NAME["Double"]})
    (metric,) = decode(body, datatype_of={2: BY_NAME["Double"]}).metrics
    assert (metric.name, metric.alias, metric.datatype, metric.value) == (None, 2, 10, 21.5)
    (unknown,) = decode(body).metrics
    assert unknown.unsupported and unknown.value is None


def test_null_and_historical_flags() -> None:
    body = encode(1, [Metric(name="a", datatype=10, value=None, is_historical=True)])
    (metric,) = decode(body).metrics
    assert metric.is_null and metric.is_historical and metric.value is None


def test_garbage_is_not_a_payload() -> None:
    with pytest.raises(PayloadError):
        decode(b"\xff\xff\xff\xff")


def test_topics_and_ids() -> None:
    topic = parse("spBv1.0/g1/DDATA/n1/press-1")
    assert topic is not None and (topic.group, topic.verb, topic.node, topic.device) == ("g1", "DDATA", "n1", "press-1")
    assert str(topic) == "spBv1.0/g1/DDATA/n1/press-1"
    assert parse("spBv1.0/STATE/scada") is None
    for bad in ("spBv1.0/g1/NDATA/n1/d1", "spBv1.0/g1/DDATA/n1", "spAv1.0/g/NDATA/n", "spBv1.0/g/XDATA/n"):
        with pytest.raises(TopicError):
            parse(bad)


def test_state_payload_is_the_specification_s_json() -> None:
    assert state_body(True, 1234) == b'{"online":true,"timestamp":1234}'
    assert read_state(b'{"online": false, "timestamp": 5}') == (False, 5)
    for bad in (b"nope", b'{"online": 1, "timestamp": 5}', b'{"online": true}'):
        with pytest.raises(PayloadError):
            read_state(bad)
