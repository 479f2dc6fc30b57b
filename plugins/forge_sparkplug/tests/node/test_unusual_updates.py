"""Metric updates (``sparkplug.metric_update``) with values at their datatype's limits and the odd Python types an
edge node's callers may pass, through the metric table, the DATA body and the stored body. These modules may run
compiled (mypyc checks annotations where it is entered; docs/compiled.md): each case has the same outcome pure and
compiled, the general encoder's bytes (or its error) and ``json.dumps``'s text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forge_sparkplug.codec.datatypes import DatatypeError, from_wire, number_of, to_wire
from forge_sparkplug.codec.payload import encode
from forge_sparkplug.node.data_body import data_body
from forge_sparkplug.node.metrics import MetricTable
from forge_sparkplug.node.stored import stored_body
from forge_sparkplug.settings import MetricSpec


class Int(int):
    pass


class Float(float):
    pass


LIMITS: dict[str, list[Any]] = {
    "Int8": [-128, 127, 2.0, -1.0, Int(5), Float(-3.0)],
    "Int64": [-(2**63), 2**63 - 1, -9.2e18, Int(-1)],
    "UInt32": [2**32 - 1, 4294967295.0, Int(0)],
    "UInt64": [2**64 - 1, 1.8e19, 0.0],
    "DateTime": [0, 2**64 - 1, 1.7e12],
    "Float": [3.4e38, 1e308, 10**30, float("nan"), float("inf"), -0.0, 5e-324, Int(3), Float(1.5)],
    "Double": [1e308, 10**308, 1, Float(2.5), -float("inf")],
    "Boolean": [True, False],
    "String": ["", "é\u2028☃", "x" * 10_000],
    "Bytes": ["", "AAEC", b"\x00\x01"],
}
REFUSED: dict[str, list[Any]] = {
    "Int8": [128, -129, 2.5, True, 10**30], "UInt64": [2**64, -1], "UInt32": [2**32],
    "Float": [10**400, True, "1"], "Boolean": [1, 0.0, None.__class__], "String": [Int(1), b"x"],
    "Bytes": ["not base64!", 5],
}


def table(datatype: str, deadband: float = 0.0) -> MetricTable:
    return MetricTable([MetricSpec(name="m", datatype=datatype, deadband=deadband)], {}, aliases=True, now_ms=1000)


def same_as_encode(t: MetricTable, entries: list[Any]) -> bytes:
    want = encode(7000, t.data(entries), 3, datatype_of=t.datatype_of())
    assert data_body(7000, entries, 3, historical=False) == want
    return want


@pytest.mark.parametrize(("datatype", "value"), [(d, v) for d, values in LIMITS.items() for v in values],
                         ids=lambda x: repr(x)[:30])
@pytest.mark.parametrize("deadband", [0, 0.5])
def test_values_at_the_limits_go_out_as_encode_writes_them(datatype, value, deadband):
    if deadband and number_of(datatype) not in {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13}:
        pytest.skip("a deadband needs a numeric datatype")
    t = table(datatype, deadband)
    changed = t.apply(None, [{"name": "m", "value": value, "timestamp": 2.0}], 5000)
    assert [(e.value, e.timestamp) for e in changed] == [(value, 2)] and type(changed[0].timestamp) is int
    same_as_encode(t, changed)
    if isinstance(value, bytes):  # raw bytes (no JSON value: never from the bus) are not stored, as json.dumps says
        with pytest.raises(TypeError, match="not JSON serializable"):
            stored_body("d", changed)
    else:
        assert stored_body("d", changed) == json.dumps({"d": "d", "m": [["m", value, 2]]}).encode()
    again = t.apply(None, [{"name": "m", "value": value}], 6000)  # the same value: unchanged (NaN is not NaN,
    assert [e.value for e in again] == ([value] if value != value and not deadband else [])  # nor beyond a deadband)


@pytest.mark.parametrize(("datatype", "value"), [(d, v) for d, values in REFUSED.items() for v in values],
                         ids=lambda x: repr(x)[:30])
def test_values_past_the_limits_are_refused_naming_the_metric(datatype, value):
    t = table(datatype)
    with pytest.raises((DatatypeError, OverflowError)) as caught:
        t.apply(None, [{"name": "m", "value": value}], 5000)
    assert caught.type is OverflowError or "'m'" in str(caught.value)
    assert t.entries[(None, "m")].value is None  # nothing changed


@pytest.mark.parametrize("stamp", [0, 2.0, 1.7e12, True, Int(7), 2**63 - 1, None, "soon"])
def test_update_timestamps_are_whole_ms(stamp):
    t = table("Int32")
    update = {"name": "m", "value": 1} if stamp is None else {"name": "m", "value": 1, "timestamp": stamp}
    changed = t.apply(None, [update], 5000)
    want = 5000 if stamp is None or stamp == "soon" else int(stamp)
    assert [e.timestamp for e in changed] == [want] and type(changed[0].timestamp) is int
    same_as_encode(t, changed)
    assert json.loads(stored_body(None, changed)) == {"d": None, "m": [["m", 1, want]]}


def test_a_timestamp_past_uint64_is_refused_by_both_encoders_alike():
    t = table("Int32")
    changed = t.apply(None, [{"name": "m", "value": 1, "timestamp": 2**70}], 5000)
    with pytest.raises(ValueError) as want:
        encode(7000, t.data(changed), 3, datatype_of=t.datatype_of())
    with pytest.raises(ValueError) as got:
        data_body(7000, changed, 3, historical=False)
    assert type(got.value) is type(want.value)


def test_one_metric_several_times_and_a_dict_subclass_update():
    class Update(dict[str, Any]):
        pass

    t = table("Double", 0.5)
    changed = t.apply(None, [Update(name="m", value=1), {"name": "m", "value": 1.2}, {"name": "m", "value": 2,
                                                                                     "extra": True}], 5000)
    assert [e.value for e in changed] == [1, 2]  # 1.2 is within the deadband of 1
    same_as_encode(t, changed)


@pytest.mark.parametrize(("datatype", "raw", "value"), [
    ("Int8", 255, -1), ("Int8", 4294967295, -1), ("Int8", 127, 127), ("Int64", 2**64 - 1, -1),
    ("Int64", 2**63, -(2**63)), ("UInt64", 2**64 - 1, 2**64 - 1), ("Float", float("nan"), None),
    ("Double", float("inf"), None), ("Bytes", b"\x00", "AA=="), ("Boolean", True, True), ("DataSet", object(), None),
])
def test_wire_values_at_the_limits_read_back(datatype, raw, value):
    assert from_wire(number_of(datatype), raw) == value
    if value is not None and datatype != "Bytes":
        assert from_wire(number_of(datatype), to_wire(number_of(datatype), value, "m")) == value
