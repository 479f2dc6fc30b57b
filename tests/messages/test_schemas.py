"""The schema registry: registration, errors with JSON pointers, duplicates, bad schema files."""

from __future__ import annotations

import json

import pytest

from forge_core.errors import DuplicateRegistration, SchemaError, UnknownMessageType
from forge_core.messages.schemas import InvalidPayload, SchemaRegistry, core_schema_dir

HEARTBEAT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["title", "machineId"],
    "properties": {"title": {"const": "heartbeat"}, "machineId": {"type": "integer", "minimum": 0},
                   "bladeType": {"enum": ["A", "B"]}},
    "additionalProperties": False,
}


def test_valid_payload_has_no_errors_and_invalid_lists_every_pointer():
    registry = SchemaRegistry()
    registry.add("pasta.heartbeat", HEARTBEAT)
    assert registry.errors("pasta.heartbeat", {"title": "heartbeat", "machineId": 2, "bladeType": "A"}) == []
    errors = registry.errors("pasta.heartbeat", {"title": "hb", "machineId": -1, "bladeType": "C", "x": 1})
    pointers = [e["pointer"] for e in errors]
    assert pointers == ["/x", "/bladeType", "/machineId", "/title"]
    assert errors[0]["message"] == "unexpected property 'x' (the schema allows no others)"


def test_compiled_check_raises_only_on_invalid():
    registry = SchemaRegistry()
    registry.add("pasta.heartbeat", HEARTBEAT)
    check, version = registry.fast_entry("pasta.heartbeat")
    check({"title": "heartbeat", "machineId": 0})
    assert version == 1
    with pytest.raises(InvalidPayload):
        check({"title": "heartbeat"})


def test_newer_draft_falls_back_to_jsonschema_with_same_verdicts():
    registry = SchemaRegistry()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "required": ["n"], "properties": {"n": {"type": "integer"}}}
    registry.add("new.draft", schema)
    assert registry.errors("new.draft", {"n": 1}) == []
    assert registry.errors("new.draft", {"n": "1"})[0]["pointer"] == "/n"


def test_duplicate_type_names_both_plugins_and_files(tmp_path):
    registry = SchemaRegistry()
    registry.add("a.b", {"type": "object"}, plugin="one", origin="one/a.b.json")
    with pytest.raises(DuplicateRegistration, match=r"first by plugin 'one' from one/a.b.json, again by plugin 'two'"):
        registry.add("a.b", {"type": "object"}, plugin="two")


def test_directory_registration_names_types_by_file_or_x_forge_type(tmp_path):
    (tmp_path / "bakery.reading.json").write_text(json.dumps({"type": "object"}))
    (tmp_path / "other.json").write_text(json.dumps({"type": "object", "x-forge-type": "bakery.order",
                                                     "x-forge-version": 3}))
    (tmp_path / "plant.schema.json").write_text(json.dumps({"type": "object"}))
    registry = SchemaRegistry()
    added = registry.add_directory(tmp_path, plugin="plant")
    assert sorted(s.type for s in added) == ["bakery.order", "bakery.reading"]
    assert registry.get("bakery.order").version == 3
    assert registry.get("bakery.reading").origin.endswith("bakery.reading.json")


@pytest.mark.parametrize(
    ("content", "match"),
    [("{broken", r"bad\.json:1: not valid JSON"), ("[1]", "must be a JSON object"),
     ('{"type": "objekt"}', "not a valid JSON Schema"),
     # the place in the schema is named, for each dialect (jsonschema-rs) and for one it does not hold (jsonschema)
     ('{"properties": {"speed": {"minimum": "fast"}}}',
      r"bad\.json: not a valid JSON Schema: at properties/speed/minimum: \"fast\" is not of type \"number\""),
     ('{"$schema": "http://json-schema.org/draft-07/schema#", "required": "id"}',
      r"not a valid JSON Schema: at required: \"id\" is not of type \"array\""),
     ('{"$schema": "http://json-schema.org/draft-03/schema#", "properties": {"speed": {"minimum": "fast"}}}',
      r"not a valid JSON Schema: at properties/speed/minimum: 'fast' is not of type 'number'"),
     # a typo in $schema is named (jsonschema alone would guess the latest draft, with a DeprecationWarning)
     ('{"$schema": "http://json-schema.org/draft-7/schema#", "type": "object"}',
      r"bad\.json: not a valid JSON Schema: at \$schema: unknown dialect 'http://json-schema.org/draft-7/schema#'"),
     ('{"$schema": "https://example.com/own-dialect", "type": "object"}', r"unknown dialect .*or leave \$schema out")],
)
def test_bad_schema_files_say_which_file_and_what(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SchemaError, match=match):
        SchemaRegistry().add("x", path)


def test_unknown_type_lists_what_is_registered():
    registry = SchemaRegistry()
    registry.add("a.one", {"type": "object"})
    with pytest.raises(UnknownMessageType, match=r"'a.two' has no registered schema; registered types: a.one"):
        registry.get("a.two")


def test_core_schemas_are_found():
    assert (core_schema_dir() / "forge.deadletter.json").is_file()
    assert (core_schema_dir() / "manifest.schema.json").is_file()


def test_compiled_check_is_strict_json_and_checks_formats():
    registry = SchemaRegistry()
    registry.add("t.stamp", {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                             "properties": {"at": {"type": "string", "format": "date-time"},
                                            "value": {"type": "number"}, "count": {"type": "integer"}}})
    check, _ = registry.fast_entry("t.stamp")
    check({"at": "2026-01-01T00:00:00Z", "value": 1.5, "count": 2})
    for bad in ({"at": "yesterday"}, {"value": float("nan")}, {"value": float("inf")}, {1: "non-string key"},
                {"value": object()}, {"count": True}):
        with pytest.raises(InvalidPayload):
            check(bad)
    assert registry.errors("t.stamp", {"count": True}) == [{"pointer": "/count",
                                                             "message": "True is not of type 'integer'"}]


def test_newer_drafts_are_checked_too():
    registry = SchemaRegistry()
    registry.add("t.pair", {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array",
                            "prefixItems": [{"type": "string"}, {"type": "number"}], "items": False})
    check, _ = registry.fast_entry("t.pair")
    check(["a", 1])
    with pytest.raises(InvalidPayload):
        check(["a", 1, "extra"])
    assert registry.errors("t.pair", ["a", "b"])[0]["pointer"] == "/1"
