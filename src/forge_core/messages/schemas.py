"""Message schemas: one JSON Schema per message type, compiled once, checked on every message.

The hot path runs ``jsonschema-rs`` (a validator in Rust, well under a microsecond for a small
schema: a third of what the Python-generated ``fastjsonschema`` took, and it knows every draft up
to 2020-12). Only when a payload fails do we run ``jsonschema`` to report every error with its
JSON pointer, which is slower but exact.

Integers are integers (docs/reliability.md, "Numbers and names from the wire"). JSON Schema counts
``1.0`` as an integer and sets no range, so ``"type": "integer"`` let a float (``5.0``, or the
``1.23e29`` orjson makes of a 30-digit number) become a machine id. A registered schema is checked
*hardened*: every ``"integer"`` without a declared bound gets the int64 one (-2**63..2**63-1), and
a float where the schema says integer is refused. The bounds are plain keywords jsonschema-rs
checks in Rust; the float test is a few generated ``type(...) is float`` lookups at the integer
fields' paths (or, for schemas whose integers hide behind ``$ref``/``anyOf``/..., a scan for
integral floats that only then asks the strict validator). The schema as written stays what
:attr:`MessageSchema.schema` shows.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jsonschema
import jsonschema.validators
import jsonschema_rs
from jsonschema.validators import validator_for

from forge_core.errors import DuplicateRegistration, SchemaError, UnknownMessageType

ErrorDetail = dict[str, str]  # {"pointer": "/machineId", "message": "'x' is not of type 'integer'"}

#: What a schema check raises for an invalid payload: jsonschema-rs's ValidationError (a
#: ValueError), or a ValueError for what is not JSON at all (a non-string key, an object).
InvalidPayload = ValueError


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
            self._detailed = _strict_validator(harden(self.schema))
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


# -- integers are integers ---------------------------------------------------------------------------------
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Keywords whose value is a subschema, a list of subschemas, or a name -> subschema map (every draft).
_ONE = ("additionalItems", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema")
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "definitions", "$defs", "dependencies", "dependentSchemas")


def _strict_integer(node: dict[str, Any]) -> bool:
    """Whether ``node`` says integer (and not number, which admits any float)."""
    type_ = node.get("type")
    if type_ == "integer":
        return True
    return isinstance(type_, list) and "integer" in type_ and "number" not in type_


def _subschemas(node: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(keyword, key or index, subschema) for every direct subschema of ``node``."""
    for keyword in _ONE:
        sub = node.get(keyword)
        if isinstance(sub, dict):
            yield keyword, None, sub
    for keyword in _MANY:
        subs = node.get(keyword)
        if isinstance(subs, list):
            for index, sub in enumerate(subs):
                if isinstance(sub, dict):
                    yield keyword, index, sub
    items = node.get("items")
    if isinstance(items, dict):
        yield "items", None, items
    elif isinstance(items, list):
        for index, sub in enumerate(items):
            if isinstance(sub, dict):
                yield "items", index, sub
    for keyword in _MAP:
        subs = node.get(keyword)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                if isinstance(sub, dict):
                    yield keyword, name, sub


def harden(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in which every integer without a declared bound has the int64 one."""

    def walk(node: dict[str, Any]) -> dict[str, Any]:
        out = dict(node)
        for keyword in _ONE:
            if isinstance(node.get(keyword), dict):
                out[keyword] = walk(node[keyword])
        for keyword in (*_MANY, "items"):
            value = node.get(keyword)
            if isinstance(value, dict):
                out[keyword] = walk(value)
            elif isinstance(value, list):
                out[keyword] = [walk(sub) if isinstance(sub, dict) else sub for sub in value]
        for keyword in _MAP:
            if isinstance(node.get(keyword), dict):
                out[keyword] = {name: walk(sub) if isinstance(sub, dict) else sub
                                for name, sub in node[keyword].items()}
        if _strict_integer(node):
            if "minimum" not in node and "exclusiveMinimum" not in node:
                out["minimum"] = INT64_MIN
            if "maximum" not in node and "exclusiveMaximum" not in node:
                out["maximum"] = INT64_MAX
        return out

    return walk(schema)


def _strict_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """jsonschema's validator for ``schema`` in which an integer is a Python int (never 1.0)."""
    cls = validator_for(schema)
    strict = jsonschema.validators.extend(
        cls, type_checker=cls.TYPE_CHECKER.redefine("integer", lambda _checker, value: type(value) is int))
    return strict(schema, format_checker=cls.FORMAT_CHECKER)


_ITEMS = object()  # a path step: every element of an array


def _integer_paths(schema: dict[str, Any]) -> tuple[list[tuple[Any, ...]], bool]:
    """The paths (property names, ``_ITEMS``) of the integer subschemas that apply wherever the
    payload has that path, and whether those are all of the schema's integers (else some sit behind
    ``$ref``, ``anyOf``, ``additionalProperties`` ... and only a validator can tell where)."""
    total = 0

    def count(node: dict[str, Any]) -> None:
        nonlocal total
        total += _strict_integer(node)
        for _keyword, _key, sub in _subschemas(node):
            count(sub)

    count(schema)
    paths: list[tuple[Any, ...]] = []

    def reach(node: dict[str, Any], path: tuple[Any, ...]) -> None:
        if _strict_integer(node):
            paths.append(path)
        properties = node.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict):
                    reach(sub, (*path, name))
        items = node.get("items")
        if isinstance(items, dict):
            reach(items, (*path, _ITEMS))

    reach(schema, ())
    return paths, len(paths) == total


def _float_guard_source(paths: list[tuple[Any, ...]]) -> str:
    """Python source of ``check(p)``: validate, then raise if a float sits at one of ``paths``."""
    tree: dict[Any, Any] = {}
    for path in paths:
        node = tree
        for step in path:
            node = node.setdefault(step, {})
        node[None] = True  # an integer here
    # names bound as defaults: locals are the cheapest lookups on this per-message path
    lines = ["def check(p, validate=validate, Invalid=Invalid, FLOAT=FLOAT, type=type, float=float, dict=dict, "
             "list=list):", "    validate(p)"]
    names = (f"v{i}" for i in itertools.count())

    def emit(var: str, node: dict[Any, Any], indent: str) -> None:
        if node.get(None):
            lines.append(f"{indent}if type({var}) is float: raise Invalid(FLOAT)")
        props = [(step, child) for step, child in node.items() if isinstance(step, str)]
        if props:
            lines.append(f"{indent}if type({var}) is dict:")
            for step, child in props:
                name = next(names)
                lines.append(f"{indent}    {name} = {var}.get({step!r})")
                emit(name, child, indent + "    ")
        if _ITEMS in node:
            name = next(names)
            lines.append(f"{indent}if type({var}) is list:")
            lines.append(f"{indent}    for {name} in {var}:")
            emit(name, node[_ITEMS], indent + "        ")

    emit("p", tree, "    ")
    lines.append("    return p")
    return "\n".join(lines)


def _has_integral_float(payload: Any) -> bool:
    """Whether an integral float is anywhere in ``payload`` (iterative: no recursion limit)."""
    stack = [payload]
    pop, push = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is float:
            if value.is_integer():
                return True
        elif kind is dict:
            push(value.values())
        elif kind is list:
            push(value)
    return False


_FLOAT = "a float where the schema says integer"


#: Meta-schemas jsonschema-rs holds itself (others it would fetch over the network).
_KNOWN_DIALECTS = frozenset(
    f"{base}{end}" for base in ("http://json-schema.org/draft-04/schema", "http://json-schema.org/draft-06/schema",
                                "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft/2019-09/schema",
                                "https://json-schema.org/draft/2020-12/schema") for end in ("", "#"))


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not valid under its meta-schema, with the place in it; None if it is.

    jsonschema-rs does it ~200x faster than jsonschema's ``check_schema`` (7 ms a schema: ~1 s of
    every plant start and of each distributed child's, as much again in ``forge validate``); a
    dialect it does not hold goes to jsonschema (draft-03); an unknown ``$schema`` is a problem (jsonschema
    would guess the latest draft with only a DeprecationWarning, so a typo in the URL went unnoticed)."""
    dialect = schema.get("$schema") if isinstance(schema, dict) else None
    if dialect is None or dialect in _KNOWN_DIALECTS:
        try:
            jsonschema_rs.meta.validate(schema)
        except jsonschema_rs.ValidationError as exc:
            at = "/".join(str(part) for part in exc.instance_path)
            return f"at {at}: {exc.message}" if at else exc.message
        return None
    cls = validator_for(schema, default=None)  # no default: an unknown dialect is named, not guessed
    if cls is None:
        return (
            f"at $schema: unknown dialect {dialect!r}; known: draft-03, draft-04, draft-06, draft-07, "
            "2019-09 and 2020-12 (e.g. 'https://json-schema.org/draft/2020-12/schema'), or leave $schema out"
        )
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(part) for part in exc.absolute_path)
        return f"at {at}: {exc.message}" if at else exc.message
    return None


def check_schema(schema: dict[str, Any], where: str) -> None:
    """Raise :class:`SchemaError` naming ``where`` and the place in the schema unless ``schema`` is valid."""
    problem = schema_problem(schema)
    if problem is not None:
        raise SchemaError(f"{where}: not a valid JSON Schema: {problem}")


def _compile(schema: dict[str, Any], where: str) -> Callable[[Any], Any]:
    check_schema(schema, where)
    checked = harden(schema)
    try:
        # Formats checked as jsonschema's FORMAT_CHECKER (and the former fastjsonschema) did.
        validate = jsonschema_rs.validator_for(checked, validate_formats=True).validate
    except Exception:  # a gap in jsonschema-rs: jsonschema still validates it exactly (and strictly)
        validator = _strict_validator(checked)

        def check_slowly(payload: Any) -> Any:
            if not validator.is_valid(payload):
                raise InvalidPayload("payload does not match its schema")
            return payload

        return check_slowly
    paths, exact = _integer_paths(schema)
    if not paths and exact:
        return validate  # no integers: jsonschema-rs alone
    if exact:
        namespace: dict[str, Any] = {"validate": validate, "Invalid": InvalidPayload, "FLOAT": _FLOAT}
        exec(_float_guard_source(paths), namespace)  # property names enter the source only through repr()
        return cast(Callable[[Any], Any], namespace["check"])
    strict = _strict_validator(checked)

    def check(payload: Any) -> Any:
        validate(payload)
        if _has_integral_float(payload) and not strict.is_valid(payload):
            raise InvalidPayload(_FLOAT)
        return payload

    return check


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
        entry = MessageSchema(type_, schema, version, plugin, origin, _compile(schema, where))
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
