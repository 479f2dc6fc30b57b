"""Settings declared once: one pydantic model per transport, component and tactic.

A plugin writes one :class:`Settings` subclass; from it Forge derives

- the JSON Schema the manifest is checked against (:meth:`Settings.json_schema`, refs inlined,
  ``additionalProperties: false`` so a typo in a key is an error at ``forge validate``);
- the defaults, filled when the runtime builds the object (no code repeats a default);
- typed attribute access (``settings.keepalive``) for the plugin's own code and for mypy;
- the docs table (:func:`settings_table`), with each field's type, default and description;
- one error class, :class:`~forge_core.errors.SettingsError`, naming the section and field at fault.

pydantic v2 was chosen over dataclasses + JSON Schema because it gives all five from one class,
its ``model_json_schema()`` is standard JSON Schema (draft 2020-12) that the manifest validator
already speaks, and its validation errors carry the field path the messages need.

Plant authors who write a plain JSON Schema dict (``params_schema``) instead get its ``default``
values filled by :func:`fill_defaults`, so a declared default is never silently ignored.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from forge_core.errors import SettingsError

__all__ = ["Settings", "SettingsError", "fill_defaults", "schema_of", "settings_table"]


class Settings(BaseModel):
    """Base of every settings and params declaration.

    Subclass it with annotated fields; use ``pydantic.Field(default, description=..., gt=...)``
    for bounds and the docs line. Unknown keys are refused (``extra="forbid"``) and instances are
    frozen: settings are read, never changed, after a plant starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    #: Keys whose value must come from the environment (``${env:VAR}``); the manifest loader
    #: refuses a literal value under them.
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The manifest-facing JSON Schema: refs inlined, pydantic's titles dropped."""
        cached = cls.__dict__.get("_forge_json_schema")
        if cached is None:
            cached = _inline(cls.model_json_schema())
            type.__setattr__(cls, "_forge_json_schema", cached)
        return copy.deepcopy(cached)

    @classmethod
    def load(cls, data: Mapping[str, Any] | None, *, where: str = "") -> Self:
        """Validate ``data`` and fill the defaults; every problem at once in one :class:`SettingsError`."""
        try:
            return cls.model_validate(dict(data or {}))
        except ValidationError as exc:
            problems = [(_join(where, err["loc"]), _message(err)) for err in exc.errors()]
            raise SettingsError(problems, model=cls.__name__) from None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, defaults included (for logs, reports and child processes)."""
        return self.model_dump(mode="json")


def schema_of(declaration: type[Settings] | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The JSON Schema of a declaration: a :class:`Settings` class or an already-written schema dict."""
    if declaration is None:
        return None
    if isinstance(declaration, type) and issubclass(declaration, Settings):
        return declaration.json_schema()
    if isinstance(declaration, Mapping):
        return dict(declaration)
    raise TypeError(f"a settings declaration is a forge_core.Settings subclass or a JSON Schema dict, "
                    f"got {declaration!r}")


def fill_defaults(schema: Mapping[str, Any] | None, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` with the ``default`` of every property it lacks, recursively into nested objects.

    For params declared as a plain JSON Schema (a plant author's ``params_schema``); defaults are
    deep-copied so two components never share one mutable default.
    """
    result = dict(data or {})
    if not schema:
        return result
    for key, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        if key not in result and "default" in prop:
            result[key] = copy.deepcopy(prop["default"])
        value = result.get(key)
        if isinstance(value, Mapping) and isinstance(prop.get("properties"), Mapping):
            result[key] = fill_defaults(prop, value)
    return result


def settings_table(declaration: type[Settings] | Mapping[str, Any]) -> str:
    """A Markdown table of a declaration's keys: key, type, default, description (for docs pages)."""
    schema = schema_of(declaration) or {}
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key, prop in (schema.get("properties") or {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else "required" if key in schema.get(
            "required", ()) else ""
        description = _markdown_text(str(prop.get("description", "")))
        rows.append(f"| `{key}` | {_type_name(prop)} | `{default}` | {description} |".replace("| `` |", "|  |"))
    return "\n".join(rows) + "\n"


# -- helpers ---------------------------------------------------------------------------------------
def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = resolve(copy.deepcopy(defs[ref.split("/")[-1]]))
                extra = {k: resolve(v) for k, v in node.items() if k != "$ref"}
                return {**target, **extra}
            return {k: resolve(v) for k, v in node.items() if k != "title"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def _markdown_text(text: str) -> str:
    """One table cell: pipes escaped, newlines folded, ``<`` and ``>`` escaped outside code spans
    (``forge-<plant>`` would otherwise vanish as an HTML tag)."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _type_name(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    options = prop.get("anyOf") or prop.get("oneOf")
    if options:
        return " \\| ".join(_type_name(o) for o in options)
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        return " \\| ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"list of {_type_name(prop['items'])}"
    return str(kind)


def _join(where: str, loc: tuple[int | str, ...]) -> str:
    parts = [where] if where else []
    parts.extend(str(p) for p in loc)
    return ".".join(parts)


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (not a setting of this section; check the spelling)"
    if kind == "missing":
        return "required key is missing"
    value = error.get("input")
    shown = json.dumps(value, default=repr)[:80] if value is not None else "null"
    return f"{error.get('msg', 'invalid')} (got {shown})"
