"""A schema compiled into the check the bus runs on every message.

The hot path runs ``jsonschema-rs`` (a validator in Rust, well under a microsecond for a small
schema: a third of what the Python-generated ``fastjsonschema`` took, and it knows every draft up
to 2020-12) on the hardened schema (:mod:`forge_core.messages.integers`), with a generated float
guard when the schema has integers. A schema jsonschema-rs cannot compile is checked by
``jsonschema`` instead, exactly and more slowly.

The check asks jsonschema-rs's ``is_valid`` and calls its ``validate`` only for a payload that is
not, to raise its error: ``validate`` on a valid payload costs ~40 % more than ``is_valid`` (it
keeps the location of every step for an error that never comes), and every message passes here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jsonschema_rs

from forge_core.messages.integers import (
    FLOAT,
    float_guard_source,
    harden,
    has_integral_float,
    integer_paths,
    strict_validator,
)
from forge_core.messages.metaschema import check_schema

#: What a schema check raises for an invalid payload: jsonschema-rs's ValidationError (a
#: ValueError), or a ValueError for what is not JSON at all (a non-string key, an object).
InvalidPayload = ValueError


def compile_check(schema: dict[str, Any], where: str) -> Callable[[Any], Any]:
    """The per-message check of ``schema`` (``where`` names it in a :class:`SchemaError`): it raises
    :data:`InvalidPayload` for an invalid payload (jsonschema-rs's error, which says where); callers use no
    return value."""
    check_schema(schema, where)
    checked = harden(schema)
    try:
        # Formats checked as jsonschema's FORMAT_CHECKER (and the former fastjsonschema) did.
        compiled = jsonschema_rs.validator_for(checked, validate_formats=True)
    except Exception:  # a gap in jsonschema-rs: jsonschema still validates it exactly (and strictly)
        validator = strict_validator(checked)

        def check_slowly(payload: Any) -> Any:
            if not validator.is_valid(payload):
                raise InvalidPayload("payload does not match its schema")
            return payload

        return check_slowly
    is_valid, validate = compiled.is_valid, compiled.validate
    paths, exact = integer_paths(schema)

    def invalid(payload: Any) -> Any:
        """Raise jsonschema-rs's error for ``payload``, which ``is_valid`` refused (it says where)."""
        validate(payload)
        raise InvalidPayload("payload does not match its schema")

    if not paths and exact:  # no integers: the validation alone (a closure: no source compiled per schema)

        def check_valid(payload: Any) -> Any:
            return payload if is_valid(payload) else invalid(payload)

        return check_valid
    if exact:
        namespace: dict[str, Any] = {"is_valid": is_valid, "invalid": invalid, "Invalid": InvalidPayload,
                                     "FLOAT": FLOAT}
        exec(float_guard_source(paths), namespace)  # property names enter the source only through repr()
        return cast(Callable[[Any], Any], namespace["check"])
    strict = strict_validator(checked)

    def check(payload: Any) -> Any:
        if not is_valid(payload):
            invalid(payload)
        if has_integral_float(payload) and not strict.is_valid(payload):
            raise InvalidPayload(FLOAT)
        return payload

    return check

