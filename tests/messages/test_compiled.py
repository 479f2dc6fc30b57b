"""A schema compiled into the per-message check: valid payloads returned, invalid ones refused."""

from __future__ import annotations

import pytest

from forge_core.errors import SchemaError
from forge_core.messages.compiled import InvalidPayload, compile_check

DRAFT7 = "http://json-schema.org/draft-07/schema#"


def test_each_kind_of_check_passes_a_valid_payload_and_refuses_an_invalid_one():
    guarded = compile_check({"$schema": DRAFT7, "type": "object", "properties": {"n": {"type": "integer"}}}, "g")
    scanned = compile_check({"$schema": DRAFT7, "type": "object",
                             "additionalProperties": {"type": "integer"}}, "s")  # integers only a validator finds
    plain = compile_check({"$schema": DRAFT7, "type": "object", "properties": {"s": {"type": "string"}}}, "p")
    for check, good, bad in ((guarded, {"n": 1}, {"n": 1.0}), (scanned, {"a": 2}, {"a": 2.0}),
                             (plain, {"s": "x"}, {"s": 1})):
        check(good)
        with pytest.raises(InvalidPayload):
            check(bad)


def test_a_property_name_cannot_inject_code_into_the_generated_guard():
    name = "x'); raise SystemExit('injected"
    check = compile_check({"$schema": DRAFT7, "type": "object", "properties": {name: {"type": "integer"}}}, "n")
    check({name: 1})
    with pytest.raises(InvalidPayload):
        check({name: 1.0})


def test_an_invalid_schema_is_refused_naming_where():
    with pytest.raises(SchemaError, match=r"^schemas/bad\.json: not a valid JSON Schema"):
        compile_check({"type": "integr"}, "schemas/bad.json")


def test_an_invalid_payload_raises_the_validators_error_which_says_where():
    # the check asks is_valid first and validate only for an invalid payload: the error is still validate's
    guarded = compile_check({"$schema": DRAFT7, "type": "object", "properties": {"n": {"type": "integer"},
                                                                               "s": {"type": "string"}}}, "g")
    plain = compile_check({"$schema": DRAFT7, "type": "object", "properties": {"s": {"type": "string"},
                                                                             "t": {"format": "date-time"}}}, "p")
    for check in (guarded, plain):
        with pytest.raises(InvalidPayload, match=r"1 is not of type \"string\""):
            check({"s": 1})
    with pytest.raises(InvalidPayload, match=r"is not a \"date-time\""):
        plain({"t": "yesterday"})
    assert guarded({"n": 1, "s": "x"}) == {"n": 1, "s": "x"}
    plain({"s": "x", "t": "2026-12-02T14:00:00.123456Z"})
