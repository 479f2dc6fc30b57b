"""``data_body`` writes what ``encode(now, table.data(entries), seq, datatype_of=table.datatype_of())`` writes, byte
for byte: every datatype the edge node takes, null values, with and without aliases, live and historical; and
refuses a value its datatype cannot carry with encode's error."""

from __future__ import annotations

import random
from typing import Any

import pytest

from forge_sparkplug.codec.datatypes import DatatypeError
from forge_sparkplug.codec.payload import encode
from forge_sparkplug.node.data_body import data_body
from forge_sparkplug.node.metrics import Entry, MetricTable
from forge_sparkplug.settings import DeviceSpec, MetricSpec

VALUES: dict[str, list[Any]] = {
    "Int8": [-128, -1, 0, 127], "Int16": [-32768, 5, 32767], "Int32": [-(2**31), -7, 0, 2**31 - 1],
    "Int64": [-(2**63), -1, 2**63 - 1], "UInt8": [0, 255], "UInt16": [0, 65535], "UInt32": [0, 17, 2**32 - 1],
    "UInt64": [0, 2**64 - 1], "Float": [0.0, -1.5, float("nan"), float("inf")], "Double": [1e-310, -0.0, 3.25, 7],
    "Boolean": [True, False], "String": ["", "running", "ünï\u2028"], "DateTime": [0, 1_700_000_000_123],
    "Text": ["x" * 200], "UUID": ["0f8fad5b-d9cb-469f-a165-70867728950e"], "Bytes": ["AAE=", ""],
}


def table(aliases: bool) -> MetricTable:
    metrics = [MetricSpec(name=f"m{i}_{kind}", datatype=kind) for i, kind in enumerate(VALUES)]
    return MetricTable(metrics[:4], {"D1": DeviceSpec(metrics=metrics)}, aliases=aliases, now_ms=1)


@pytest.mark.parametrize("aliases", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_data_body_is_encode_of_table_data(aliases: bool, seed: int) -> None:
    rng = random.Random(seed)
    t = table(aliases)
    entries = list(t.entries.values())
    for _ in range(1500):
        picked = rng.sample(entries, rng.randint(0, 6))
        for entry in picked:
            kind = next(k for k in VALUES if entry.name.endswith("_" + k))
            entry.value = None if rng.random() < 0.1 else rng.choice(VALUES[kind])
            entry.timestamp = rng.choice([0, 5, 1_700_000_000_000 + rng.randint(0, 10**6)])
        historical, now, seq = rng.random() < 0.3, rng.randint(0, 2**41), rng.randint(0, 255)
        want = encode(now, t.data(picked, historical=historical), seq, datatype_of=t.datatype_of())
        assert data_body(now, picked, seq, historical=historical) == want


@pytest.mark.parametrize("aliases", [True, False])
def test_a_value_the_datatype_cannot_carry_is_refused_as_encode_refuses_it(aliases: bool) -> None:
    t = table(aliases)
    entry = t.entries[("D1", "m6_UInt32")]
    entry.value = -1
    with pytest.raises(DatatypeError) as want:
        encode(1, t.data([entry]), 0, datatype_of=t.datatype_of())
    with pytest.raises(DatatypeError) as got:
        data_body(1, [entry], 0, historical=False)
    assert str(got.value) == str(want.value)
    assert ("'11'" if aliases else "'m6_UInt32'") in str(got.value)


def test_entries_copied_for_a_replay_encode_the_same() -> None:
    t = table(True)
    entry = t.entries[("D1", "m3_Int64")]
    copy = Entry("D1", entry.name, entry.alias, entry.datatype, 0.0, -5, 42, -5, True)
    entry.value, entry.timestamp = -5, 42
    assert data_body(9, [copy], 3, historical=True) == encode(9, t.data([entry], historical=True), 3,
                                                             datatype_of=t.datatype_of())


@pytest.mark.parametrize(("name", "value"), [("m6_UInt32", 2**32), ("m4_UInt8", 256), ("m2_Int32", 2**31),
                                             ("m7_UInt64", 2**64), ("m6_UInt32", True)])
def test_an_int_past_its_datatype_is_refused_or_written_as_encode_does(name: str, value: Any) -> None:
    t = table(True)
    entry = t.entries[("D1", name)]
    entry.value = value
    try:
        want = encode(1, t.data([entry]), 0, datatype_of=t.datatype_of())
    except DatatypeError as error:
        with pytest.raises(DatatypeError, match=str(error).replace("(", r"\(").replace(")", r"\)")):
            data_body(1, [entry], 0, historical=False)
    else:
        assert data_body(1, [entry], 0, historical=False) == want
