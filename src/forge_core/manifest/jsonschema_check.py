"""The manifest's JSON Schema, and its errors said as a plant engineer reads them.

A value of the wrong type is reported here, once, with its place (``components.mixer.params.rate``)
and, for an unknown key, the closest allowed one. An integer is an ``int`` (not 1.0); a number no
schema can refuse (inf, 1e308) is left to :mod:`forge_core.manifest.numbers`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from forge_core.manifest.metrics import MetricsSettings
from forge_core.manifest.model import DocPath, Issue
from forge_core.manifest.numbers import number_problem
from forge_core.messages.metaschema import schema_problem

SCHEMA_FILE = "manifest.schema.json"


@cache
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema: from the installed wheel, else from the source checkout; sections
    declared as Settings models (``runtime.metrics``) are filled in from their model."""
    schema = _schema_file()
    schema["properties"]["runtime"]["properties"]["metrics"] = MetricsSettings.json_schema()
    return schema


def _schema_file() -> dict[str, Any]:
    try:
        packaged = resources.files("forge_core").joinpath("_schemas", SCHEMA_FILE)
        if packaged.is_file():
            return dict(json.loads(packaged.read_text(encoding="utf-8")))
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover
        pass
    # Editable install: <repo>/src/forge_core/manifest/jsonschema_check.py -> <repo>/schemas/
    return dict(json.loads((Path(__file__).resolve().parents[3] / "schemas" / SCHEMA_FILE).read_text("utf-8")))


def _strict_integer(checker: Any, instance: Any) -> bool:
    """An integer is an ``int``: JSON Schema's "integer" also takes 1.0 and 1e308, which the runtime
    cannot use as a count (``range(1e308)`` is a TypeError at start)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _strict(cls: type[Any]) -> type[Any]:
    return validators.extend(cls, type_checker=cls.TYPE_CHECKER.redefine("integer", _strict_integer))


@cache
def _manifest_validator() -> Any:
    return _strict(Draft202012Validator)(manifest_schema())


def profile_keys() -> frozenset[str]:
    """Top-level keys a profile may set (the schema's ``$defs.profile`` properties)."""
    return frozenset(manifest_schema()["$defs"]["profile"]["properties"])


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {
    dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number",
    type(None): "null",
}


def _type_of(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def schema_issues(doc: Any, schema: dict[str, Any] | None = None, prefix: DocPath = ()) -> list[Issue]:
    """Validate ``doc`` against ``schema`` (the manifest schema by default); paths get ``prefix``."""
    if schema is None:
        validator = _manifest_validator()
    else:
        problem = schema_problem(schema)
        if problem is not None:
            return [Issue(prefix, f"the schema contributed for this section is invalid: {problem}")]
        validator = _strict(validators.validator_for(schema, default=Draft202012Validator))(schema)
    issues: list[Issue] = []
    for error in validator.iter_errors(doc):
        issues.extend(_humanize(error, prefix))
    return issues


def _humanize(error: ValidationError, prefix: DocPath) -> Iterator[Issue]:
    path: DocPath = (*prefix, *error.absolute_path)
    kind, value, schema = error.validator, error.instance, error.schema
    if number_problem(value) is not None:
        return  # reported once, by number_issues, with the reason that matters
    if path == ("version",) and not prefix:
        yield Issue(path, f"unsupported manifest version {show(value)}; this Forge reads version 1 "
                          "(write `version: 1`)")
    elif kind == "required":
        missing = [key for key in error.validator_value if isinstance(value, dict) and key not in value]
        for key in missing or error.validator_value:
            hint = " (write `version: 1`)" if key == "version" and not path else ""
            yield Issue((*path, key), f"required key {key!r} is missing{hint}")
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in value:
            if key in schema.get("properties", {}) or any(
                re.search(p, str(key)) for p in schema.get("patternProperties", {})
            ):
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            listing = f"; allowed: {', '.join(allowed)}" if allowed else ""
            yield Issue((*path, key), f"unknown key {key!r}{guess}{listing}")
    elif "propertyNames" in error.relative_schema_path and "not" in schema and "description" in schema:
        yield Issue((*path, value), f"unknown key {show(value)}: {schema['description']}")
    elif "propertyNames" in error.relative_schema_path:
        yield Issue((*path, value), f"invalid name {show(value)}: must match {schema.get('pattern', '')!r}"
                    if kind == "pattern" else f"invalid name {show(value)}: {error.message}")
    elif kind == "type":
        expected = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        names = " or ".join("mapping" if t == "object" else "list" if t == "array" else t for t in expected)
        yield Issue(path, f"expected {names}, got {_type_of(value)} {show(value)}")
    elif kind == "enum":
        yield Issue(path, f"{show(value)} is not one of {', '.join(map(repr, error.validator_value))}")
    elif kind == "pattern":
        yield Issue(path, f"{show(value)} does not match {error.validator_value!r}")
    elif kind == "minLength" and isinstance(value, str):
        yield Issue(path, f"{show(value)} is shorter than {error.validator_value} characters")
    elif kind in ("oneOf", "anyOf") and error.context:
        # a branch of the value's own type says what is wrong ("too short"), not a "expected null"
        # from the branch of another type (``str | None`` with a minimum length, say)
        fitting = [e for e in error.context if e.validator != "type"]
        yield from _humanize(best_match(fitting or error.context), prefix)
    else:
        # jsonschema's own messages mostly name the value already ("0 is less than the minimum of 1").
        shown = show(value)
        yield Issue(path, error.message if shown in error.message else f"{shown}: {error.message}")
