"""Message schemas: one JSON Schema per message type, compiled once, checked on every message.

The registry (:class:`SchemaRegistry`) holds each type's :class:`MessageSchema` and its compiled
check (:mod:`forge_core.messages.compiled`: ``jsonschema-rs`` on the hot path). Only when a payload
fails do we run ``jsonschema`` to report every error with its JSON pointer, which is slower but
exact. Integers are integers: a registered schema is checked hardened
(:mod:`forge_core.messages.integers`); the schema as written stays what :attr:`MessageSchema.schema`
shows. Whether a schema is valid JSON Schema at all: :mod:`forge_core.messages.metaschema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from forge_core.errors import DuplicateRegistration, SchemaError, UnknownMessageType
from forge_core.messages.compiled import InvalidPayload, compile_check
from forge_core.messages.integers import INT64_MAX, INT64_MIN, harden, strict_validator
from forge_core.messages.metaschema import check_schema, schema_problem

# Names that lived here before the compiled check, the integer hardening and the meta-schema check
# had modules of their own stay importable from here.
__all__ = ["INT64_MAX", "INT64_MIN", "ErrorDetail", "InvalidPayload", "MessageSchema", "SchemaRegistry",
           "check_schema", "core_schema_dir", "harden", "schema_problem"]

ErrorDetail = dict[str, str]  # {"pointer": "/machineId", "message": "'x' is not of type 'integer'"}


@dataclass
class MessageSchema:
    """A registered message type."""

    type: str
    schema: dict[str, Any]
    version: int = 1
    plugin: str | None = None
    origin: str = ""
    check_fast: Callable[[Any], Any] = field(repr=False, default=None)  # type: ignore[assignment]
    _detailed: jsonschema.protocols.Validator | None = field(repr=False, default=None)

    def errors(self, payload: Any) -> list[ErrorDetail]:
        """Every error in ``payload``, each with its JSON pointer; empty when valid."""
        if self._detailed is None:
            self._detailed = strict_validator(harden(self.schema))
        found: list[dict[str, str]] = []
        for error in sorted(self._detailed.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]):
            pointer = "".join(f"/{_escape(part)}" for part in error.absolute_path)
            extras = _unexpected_keys(error)
            if extras:  # point at each unexpected key, not at the object that holds it
                found.extend({"pointer": f"{pointer}/{_escape(key)}",
                              "message": f"unexpected property {key!r} (the schema allows no others)"}
                             for key in extras)
                continue
            found.append({"pointer": pointer or "/", "message": error.message})
        return found


def _unexpected_keys(error: jsonschema.ValidationError) -> list[str]:
    if error.validator != "additionalProperties" or error.validator_value is not False:
        return []
    if not isinstance(error.instance, dict) or not isinstance(error.schema, dict):
        return []
    declared = error.schema.get("properties", {})
    patterns = list(error.schema.get("patternProperties", {}))
    return [key for key in error.instance
            if key not in declared and not any(re.search(p, key) for p in patterns)]


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


class SchemaRegistry:
    """Message type → schema. Plugins and plants add to it through ``forge_register_schemas``."""

    def __init__(self) -> None:
        self._schemas: dict[str, MessageSchema] = {}
        self._fast: dict[str, tuple[Callable[[Any], Any], int]] = {}
        #: (compiled check that raises on invalid, schema version) for a type; None if unknown.
        #: The dict's own ``get``: no Python frame per message on the bus's hot path.
        self.fast_entry: Callable[[str], tuple[Callable[[Any], Any], int] | None] = self._fast.get
        self.current_plugin: str | None = None

    # -- registration -------------------------------------------------------------------
    def add(
        self,
        type_: str,
        schema: dict[str, Any] | str | Path,
        *,
        version: int | None = None,
        plugin: str | None = None,
        origin: str = "",
    ) -> MessageSchema:
        """Register ``schema`` (a dict or a JSON file path) for message type ``type_``."""
        plugin = plugin or self.current_plugin
        if isinstance(schema, (str, Path)):
            origin = str(schema)
            schema = _read_json(Path(schema))
        existing = self._schemas.get(type_)
        if existing is not None:
            raise DuplicateRegistration(
                f"message type {type_!r} is registered twice: first by plugin {existing.plugin!r}"
                f"{' from ' + existing.origin if existing.origin else ''}, again by plugin {plugin!r}"
                f"{' from ' + origin if origin else ''}; rename one of them",
                plugin=plugin,
                hook="forge_register_schemas",
            )
        where = origin or f"schema for {type_!r}"
        version = version if version is not None else int(schema.get("x-forge-version", 1))
        entry = MessageSchema(type_, schema, version, plugin, origin, compile_check(schema, where))
        self._schemas[type_] = entry
        self._fast[type_] = (entry.check_fast, entry.version)
        return entry

    def add_directory(self, directory: str | Path, *, plugin: str | None = None) -> list[MessageSchema]:
        """Register every ``*.json`` file in ``directory``.

        The type is the file's ``x-forge-type`` key, else its name without ``.json``
        (``pasta.heartbeat.json`` → ``pasta.heartbeat``). ``*.schema.json`` files are
        documents other than messages (the manifest schema) and are skipped.
        """
        added = []
        for path in sorted(Path(directory).glob("*.json")):
            if path.name.endswith(".schema.json"):
                continue
            schema = _read_json(path)
            type_ = schema.get("x-forge-type") or path.name[: -len(".json")]
            added.append(self.add(type_, schema, plugin=plugin, origin=str(path)))
        return added

    # -- lookup -------------------------------------------------------------------------
    def __contains__(self, type_: str) -> bool:
        return type_ in self._schemas

    def __iter__(self) -> Iterator[MessageSchema]:
        return iter(self._schemas.values())

    def __len__(self) -> int:
        return len(self._schemas)

    def get(self, type_: str) -> MessageSchema:
        try:
            return self._schemas[type_]
        except KeyError:
            raise UnknownMessageType(type_, list(self._schemas)) from None

    # -- validation ---------------------------------------------------------------------
    def errors(self, type_: str, payload: Any) -> list[ErrorDetail]:
        """Every error of ``payload`` against the schema of ``type_`` (empty when valid)."""
        entry = self.get(type_)
        try:
            entry.check_fast(payload)
            return []
        except InvalidPayload:
            return entry.errors(payload) or [{"pointer": "/", "message": "payload does not match schema"}]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"schema file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path}: a schema must be a JSON object")
    return data


def core_schema_dir() -> Path:
    """Where forge-core's own schemas are: packaged, or the checkout's ``schemas/``."""
    from importlib.resources import files

    packaged = Path(str(files("forge_core"))) / "_schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "schemas"
