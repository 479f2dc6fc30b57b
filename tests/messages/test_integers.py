"""Integers are integers (issue 11, section 2): hardened schemas, the float guard, through the registry
and the helpers of forge_core.messages.integers themselves."""

from __future__ import annotations

import pytest

from forge_core.messages.integers import INT64_MAX, INT64_MIN, harden, has_integral_float, integer_paths
from forge_core.messages.schemas import InvalidPayload, SchemaRegistry

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                   "bladeType": {"enum": ["A", "B"]}},
    "additionalProperties": False,
}


def test_harden_bounds_only_the_unbounded_sides_of_integers():
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}, "b": {"type": "integer"},
                                               "c": {"type": ["integer", "number"]}, "d": {"type": "string"}}}
    hardened = harden(schema)["properties"]
    assert hardened["a"] == {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
    assert hardened["b"] == {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
    assert hardened["c"] == {"type": ["integer", "number"]}  # a number admits any float: left alone
    assert hardened["d"] == {"type": "string"}
    assert "maximum" not in schema["properties"]["b"]  # a copy: the schema as written is unchanged


def test_integer_paths_say_when_integers_hide_where_only_a_validator_finds_them():
    plain = {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}},
                                              "n": {"type": "integer"}}}
    paths, exact = integer_paths(plain)
    assert [p[0] for p in paths] == ["ids", "n"] and exact
    behind = {"type": "object", "properties": {"n": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}}
    assert integer_paths(behind) == ([], False)


def test_has_integral_float_looks_everywhere_without_recursing():
    assert has_integral_float({"a": [1, {"b": 2.0}]})
    assert not has_integral_float({"a": [1, {"b": 2.5}], "c": "3.0"})
    deep: list[object] = [1.0]
    for _ in range(5000):  # deeper than the recursion limit
        deep = [deep]
    assert has_integral_float(deep)


@pytest.mark.parametrize("bad", [1.2345678901234568e29, 7.0, 0.0, 2**63, 2**64, 18446744073709551615, -(2**63) - 1,
                                 1e19])
def test_integral_floats_and_integers_beyond_int64_are_not_integers(bad):
    """JSON Schema counts 1.0 as an integer and sets no range; Forge refuses both: a float or an
    unbounded number in an id field is how one heartbeat crashed the schedulers."""
    registry = SchemaRegistry()
    registry.add("pasta.heartbeat", HEARTBEAT)
    check, _ = registry.fast_entry("pasta.heartbeat")
    with pytest.raises(InvalidPayload):
        check({"title": "heartbeat", "machineId": bad})
    errors = registry.errors("pasta.heartbeat", {"title": "heartbeat", "machineId": bad})
    assert {e["pointer"] for e in errors} == {"/machineId"}, errors


def test_integers_within_int64_and_the_declared_range_pass():
    registry = SchemaRegistry()
    registry.add("pasta.heartbeat", HEARTBEAT)
    registry.add("t.signed", {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                              "properties": {"n": {"type": "integer"}, "big": {"type": "integer", "maximum": 2**70},
                                             "x": {"type": "number"}}})
    check, _ = registry.fast_entry("pasta.heartbeat")
    for good in (0, 7, INT64_MAX):
        check({"title": "heartbeat", "machineId": good})
    signed, _ = registry.fast_entry("t.signed")
    signed({"n": -(2**63), "x": 7.0})  # a number may be integral
    signed({"n": INT64_MAX, "big": 2**64})  # a declared maximum beyond int64 is the schema's to make
    assert registry.errors("t.signed", {"n": 2**63})[0]["pointer"] == "/n"
    with pytest.raises(InvalidPayload):
        signed({"big": 2.0**64})  # but a float is still no integer


def test_integer_rules_reach_nested_objects_arrays_refs_and_combinators():
    registry = SchemaRegistry()
    registry.add("t.deep", {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "definitions": {"id": {"type": "integer", "minimum": 0}},
        "properties": {
            "ids": {"type": "array", "items": {"$ref": "#/definitions/id"}},
            "inner": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
        }})
    check, _ = registry.fast_entry("t.deep")
    check({"ids": [1, 2], "inner": {"n": None}, "either": "x", "tuple": ["a", 3], "map": {"a": 1}})
    for bad in ({"ids": [1, 2.0]}, {"inner": {"n": 3.0}}, {"either": 4.0}, {"tuple": ["a", 3.0]}, {"map": {"a": 1.0}},
                {"ids": [2**63]}, {"map": {"a": 1e30}}):
        with pytest.raises(InvalidPayload):
            check(bad)
        assert registry.errors("t.deep", bad), bad


def test_registered_schema_is_kept_as_written():
    registry = SchemaRegistry()
    entry = registry.add("pasta.heartbeat", HEARTBEAT)
    assert entry.schema == HEARTBEAT and "maximum" not in HEARTBEAT["properties"]["machineId"]
