"""``decode`` asks ``HasField`` only for a field holding its default value and reads values through one table:
it must give what a ``HasField`` per field and ``from_wire`` give, for every shape of metric (fields present with
their default value 0 or "", absent, values in the datatype's field or another one, unknown datatypes)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from forge_sparkplug.codec.datatypes import FIELD, from_wire
from forge_sparkplug.codec.payload import Metric, Payload, PayloadError, decode
from forge_sparkplug.proto.sparkplug_b_pb2 import Payload as ProtoPayload


def reference(body: bytes, *, datatype_of: dict[int, int] | None = None) -> Payload:
    """The decode of before (a HasField per field, from_wire for every value)."""
    message = ProtoPayload()
    message.ParseFromString(body)
    metrics = []
    for item in message.metrics:
        alias = item.alias if item.HasField("alias") else None
        datatype = item.datatype if item.HasField("datatype") else None
        if datatype is None and alias is not None and datatype_of is not None:
            datatype = datatype_of.get(alias)
        which = item.WhichOneof("value")
        value = None
        unsupported = False
        if which is not None and datatype is not None:
            if FIELD.get(datatype) == which:
                value = from_wire(datatype, getattr(item, which))
            else:
                unsupported = True
        elif which is not None:
            unsupported = True
        metrics.append(Metric(
            name=item.name if item.HasField("name") else None, alias=alias, datatype=datatype, value=value,
            timestamp=item.timestamp if item.HasField("timestamp") else None,
            is_historical=item.is_historical, is_null=item.is_null, is_transient=item.is_transient,
            unsupported=unsupported))
    return Payload(message.timestamp if message.HasField("timestamp") else None, metrics,
                   message.seq if message.HasField("seq") else None)


VALUES: dict[str, list[Any]] = {
    "int_value": [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 2**31 - 1, 2**31, 2**32 - 1],
    "long_value": [0, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1],
    "float_value": [0.0, -0.0, 1.5, -2.25, float("nan"), float("inf"), float("-inf"), 3.4e38],
    "double_value": [0.0, -0.0, 1e-310, 1.7976931348623157e308, float("nan"), float("inf"), -1.0 / 3],
    "boolean_value": [False, True],
    "string_value": ["", "running", "ünïcode", "a\nb", "x" * 300],
    "bytes_value": [b"", b"\x00\xff", bytes(range(256))],
}


def random_body(rng: random.Random) -> bytes:
    message = ProtoPayload()
    if rng.random() < 0.8:
        message.timestamp = rng.choice([0, 1, 1_700_000_000_000, 2**64 - 1])
    if rng.random() < 0.8:
        message.seq = rng.choice([0, 1, 255])
    for _ in range(rng.randint(0, 6)):
        item = message.metrics.add()
        if rng.random() < 0.5:
            item.name = rng.choice(["", "State", "GoodCount", "Node Control/Rebirth"])
        if rng.random() < 0.7:
            item.alias = rng.choice([0, 0, 1, 2, 3, 7, 2**64 - 1])
        if rng.random() < 0.4:
            item.datatype = rng.choice([0, 0, *range(1, 22)])
        if rng.random() < 0.7:
            item.timestamp = rng.choice([0, 0, 5, 1_700_000_000_123])
        for flag in ("is_historical", "is_transient", "is_null"):
            if rng.random() < 0.2:
                setattr(item, flag, rng.random() < 0.5)
        if rng.random() < 0.9:
            field = rng.choice(list(VALUES))
            setattr(item, field, rng.choice(VALUES[field]))
    return message.SerializeToString()


def same(a: Payload, b: Payload) -> bool:
    """Equal, NaN equal to NaN (a float field may hold one; decode maps a Float/Double NaN to None)."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("seed", range(4))
def test_decode_gives_what_a_hasfield_per_field_gives(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3000):
        body = random_body(rng)
        datatype_of = None if rng.random() < 0.2 else {a: rng.choice([0, *range(1, 22)]) for a in (0, 1, 2, 3, 7)}
        got, want = decode(body, datatype_of=datatype_of), reference(body, datatype_of=datatype_of)
        assert same(got, want), (body, datatype_of, got, want)


def test_a_field_set_to_its_default_is_present() -> None:
    message = ProtoPayload()
    item = message.metrics.add()
    item.name, item.alias, item.datatype, item.timestamp, item.int_value = "", 0, 0, 0, 5
    metric = decode(message.SerializeToString(), datatype_of={0: 7}).metrics[0]
    # datatype 0 (Unknown) was sent: it is not looked up by alias, and its value cannot be read
    assert (metric.name, metric.alias, metric.datatype, metric.timestamp) == ("", 0, 0, 0)
    assert metric.unsupported and metric.value is None
    absent = ProtoPayload()
    absent.metrics.add().int_value = 5
    metric = decode(absent.SerializeToString(), datatype_of={0: 7}).metrics[0]
    assert (metric.name, metric.alias, metric.datatype, metric.timestamp) == (None, None, None, None)
    assert metric.unsupported


def test_malformed_bytes_are_refused() -> None:
    with pytest.raises(PayloadError, match="not a Sparkplug B payload"):
        decode(b"\xff\xff\xff")
