"""Is a schema valid JSON Schema: every dialect, the place of the problem, unknown dialects named."""

from __future__ import annotations

import pytest

from forge_core.errors import SchemaError
from forge_core.messages.metaschema import check_schema, schema_problem


def test_a_valid_schema_has_no_problem_in_every_known_dialect():
    for dialect in ("http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#",
                    "https://json-schema.org/draft/2020-12/schema", "http://json-schema.org/draft-03/schema#"):
        assert schema_problem({"$schema": dialect, "type": "object"}) is None, dialect
    assert schema_problem({"type": "object"}) is None  # no $schema: the latest draft


def test_a_problem_names_its_place_in_the_schema():
    problem = schema_problem({"type": "object", "properties": {"n": {"type": "integr"}}})
    assert problem is not None and problem.startswith("at properties/n/type:"), problem


def test_an_unknown_dialect_is_named_not_guessed():
    problem = schema_problem({"$schema": "http://json-schema.org/draft-08/schema#", "type": "object"})
    assert problem is not None and "unknown dialect" in problem and "draft-08" in problem


def test_check_schema_raises_naming_where():
    with pytest.raises(SchemaError, match=r"^schemas/x\.json: not a valid JSON Schema: at type"):
        check_schema({"type": 5}, "schemas/x.json")
