"""forge_core.manifest.jsonschema_check.schema_issues against a schema a plugin contributes for a section."""

from __future__ import annotations

from forge_core.manifest.jsonschema_check import schema_issues

SECTION = {"type": "object", "properties": {"port": {"type": "integer", "minimum": 1}}, "additionalProperties": False}


def test_a_valid_section_has_no_issue() -> None:
    assert schema_issues({"port": 8080}, SECTION, ("transports", "mqtt", "settings")) == []


def test_a_bad_value_is_named_by_its_path() -> None:
    [issue] = schema_issues({"port": 0}, SECTION, ("transports", "mqtt", "settings"))
    assert issue.path == ("transports", "mqtt", "settings", "port")


def test_an_invalid_contributed_schema_is_an_issue_naming_the_place_in_it() -> None:
    broken = {"type": "object", "properties": {"port": {"type": "integer", "minimum": "one"}}}
    [issue] = schema_issues({"port": 1}, broken, ("components", "line"))
    assert issue.path == ("components", "line")
    assert issue.message == ('the schema contributed for this section is invalid: '
                             'at properties/port/minimum: "one" is not of type "number"')
