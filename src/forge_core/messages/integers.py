"""Integers are integers: a registered schema is checked *hardened*.

JSON Schema counts ``1.0`` as an integer and sets no range, so ``"type": "integer"`` let a float
(``5.0``, or the ``1.23e29`` orjson makes of a 30-digit number) become a machine id
(docs/reliability.md, "Numbers and names from the wire"). :func:`harden` gives every ``"integer"``
without a declared bound the int64 one (-2**63..2**63-1), plain keywords jsonschema-rs checks in
Rust; a float where the schema says integer is refused by a few generated ``type(...) is float``
lookups at the integer fields' paths (:func:`float_guard_source`), or, for schemas whose integers
hide behind ``$ref``/``anyOf``/..., by a scan for integral floats (:func:`has_integral_float`) that
only then asks the strict validator (:func:`strict_validator`). The schema as written stays what
:attr:`~forge_core.messages.schemas.MessageSchema.schema` shows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema.validators
from jsonschema.validators import validator_for

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


def strict_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """jsonschema's validator for ``schema`` in which an integer is a Python int (never 1.0)."""
    cls = validator_for(schema)
    strict = jsonschema.validators.extend(
        cls, type_checker=cls.TYPE_CHECKER.redefine("integer", lambda _checker, value: type(value) is int))
    return strict(schema, format_checker=cls.FORMAT_CHECKER)


_ITEMS = object()  # a path step: every element of an array


def integer_paths(schema: dict[str, Any]) -> tuple[list[tuple[Any, ...]], bool]:
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


def float_guard_source(paths: list[tuple[Any, ...]]) -> str:
    """Python source of ``check(p)``: validate (``is_valid``; when not, ``invalid(p)`` raises the validator's
    error), then raise if a float sits at one of ``paths``. (One expression: each guard is compiled at plant
    start, ~0.9 M instructions; an ``if`` block with its own ``raise`` there compiled ~6 % slower.)"""
    tree: dict[Any, Any] = {}
    for path in paths:
        node = tree
        for step in path:
            node = node.setdefault(step, {})
        node[None] = True  # an integer here
    # names bound as defaults: locals are the cheapest lookups on this per-message path
    lines = ["def check(p, is_valid=is_valid, invalid=invalid, Invalid=Invalid, FLOAT=FLOAT, type=type, "
             "float=float, dict=dict, list=list):", "    is_valid(p) or invalid(p)"]
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


def has_integral_float(payload: Any) -> bool:
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


FLOAT = "a float where the schema says integer"
