"""Sparkplug B datatypes (spec §6.4.16): names, numbers, the protobuf field each travels in, and
the conversion of a JSON value to and from it.

Signed integers travel in the unsigned ``int_value`` / ``long_value`` fields as two's complement of
their own width (Int8 -1 is 255), as pysparkplug writes them; a reader also accepts the 32-bit
sign extension some implementations write (Int8 -1 as 4294967295). DateTime is milliseconds since
the epoch (UTC). Bytes and File values are base64 text on the Forge bus. Arrays, DataSet,
Template and the PropertySet types are not supported for values (a metric of such a type is
refused by the edge node's settings and read as ``value: null, unsupported: true`` by the host).
"""

from __future__ import annotations

import base64
import math
from typing import Any

__all__ = [
    "BY_NAME",
    "BY_NUMBER",
    "FIELD",
    "INT_RANGE",
    "NUMERIC",
    "SUPPORTED",
    "DatatypeError",
    "from_wire",
    "number_of",
    "to_wire",
]

#: Every datatype of the specification, by name (as the .proto's DataType enum spells them).
BY_NAME: dict[str, int] = {
    "Unknown": 0, "Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6, "UInt32": 7,
    "UInt64": 8, "Float": 9, "Double": 10, "Boolean": 11, "String": 12, "DateTime": 13, "Text": 14,
    "UUID": 15, "DataSet": 16, "Bytes": 17, "File": 18, "Template": 19, "PropertySet": 20,
    "PropertySetList": 21, "Int8Array": 22, "Int16Array": 23, "Int32Array": 24, "Int64Array": 25,
    "UInt8Array": 26, "UInt16Array": 27, "UInt32Array": 28, "UInt64Array": 29, "FloatArray": 30,
    "DoubleArray": 31, "BooleanArray": 32, "StringArray": 33, "DateTimeArray": 34,
}
BY_NUMBER: dict[int, str] = {number: name for name, number in BY_NAME.items()}

#: The Metric.value oneof field each supported datatype travels in.
FIELD: dict[int, str] = {
    1: "int_value", 2: "int_value", 3: "int_value", 5: "int_value", 6: "int_value", 7: "int_value",
    4: "long_value", 8: "long_value", 13: "long_value",
    9: "float_value", 10: "double_value", 11: "boolean_value",
    12: "string_value", 14: "string_value", 15: "string_value",
    17: "bytes_value", 18: "bytes_value",
}
SUPPORTED = frozenset(FIELD)
#: Datatypes whose values a deadband applies to.
NUMERIC = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13})

_SIGNED_BITS = {1: 8, 2: 16, 3: 32, 4: 64}
_UNSIGNED_BITS = {5: 8, 6: 16, 7: 32, 8: 64, 13: 64}


class DatatypeError(ValueError):
    """A value that the metric's datatype cannot carry; the message names the metric."""


def number_of(datatype: str | int) -> int:
    """The datatype's number from its name (case-insensitive) or number; ValueError if unknown."""
    if isinstance(datatype, int) and not isinstance(datatype, bool):
        if datatype in BY_NUMBER:
            return datatype
    elif isinstance(datatype, str):
        for name, number in BY_NAME.items():
            if name.lower() == datatype.lower():
                return number
    raise ValueError(f"unknown Sparkplug datatype {datatype!r}; known: {', '.join(BY_NAME)}")


#: integer datatype -> (lowest, one past the highest, the width a negative value wraps by or 0)
INT_RANGE: dict[int, tuple[int, int, int]] = {
    **{number: (-(1 << (bits - 1)), 1 << (bits - 1), 1 << bits) for number, bits in _SIGNED_BITS.items()},
    **{number: (0, 1 << bits, 0) for number, bits in _UNSIGNED_BITS.items()},
}
_FLOATS = frozenset({9, 10})
_STRINGS = frozenset({12, 14, 15})


def to_wire(datatype: int, value: Any, metric: object = "?") -> Any:
    """``value`` (as JSON gives it) as the protobuf field of ``datatype`` holds it. ``metric`` (its name, or
    its alias) only names it in a :class:`DatatypeError`.

    The common cases (an ``int`` in range of an integer type, an ``int`` or ``float`` for Float/Double, a
    ``str`` for a string type) are answered first, by the value's exact type: an edge node converts every
    value it reports twice (checked on update, encoded in the DATA), ~400,000 times in the OEE line's
    simulated day. Anything else takes :func:`_to_wire`, which also words the errors."""
    kind = type(value)
    if kind is int:
        bounds = INT_RANGE.get(datatype)
        if bounds is not None:
            if bounds[0] <= value < bounds[1]:
                return value + bounds[2] if value < 0 else value
        elif datatype in _FLOATS:
            return float(value)
    elif kind is float:
        if datatype in _FLOATS:
            return value
    elif kind is str and datatype in _STRINGS:
        return value
    return _to_wire(datatype, value, metric)


def _to_wire(datatype: int, value: Any, metric: object) -> Any:
    """:func:`to_wire` for every value and datatype, with the error naming ``metric``."""
    where = f"metric {metric if isinstance(metric, str) else str(metric)!r} ({BY_NUMBER.get(datatype, datatype)})"
    if datatype not in SUPPORTED:
        raise DatatypeError(f"{where}: values of this datatype are not supported")
    if datatype in _SIGNED_BITS or datatype in _UNSIGNED_BITS:
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not value.is_integer()):
            raise DatatypeError(f"{where}: {value!r} is not an integer")
        number = int(value)
        if datatype in _SIGNED_BITS:
            bits = _SIGNED_BITS[datatype]
            if not -(1 << (bits - 1)) <= number < (1 << (bits - 1)):
                raise DatatypeError(f"{where}: {number} is out of range")
            return number + (1 << bits) if number < 0 else number
        bits = _UNSIGNED_BITS[datatype]
        if not 0 <= number < (1 << bits):
            raise DatatypeError(f"{where}: {number} is out of range")
        return number
    if datatype in (9, 10):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DatatypeError(f"{where}: {value!r} is not a number")
        return float(value)
    if datatype == 11:
        if not isinstance(value, bool):
            raise DatatypeError(f"{where}: {value!r} is not a boolean")
        return value
    if datatype in (12, 14, 15):
        if not isinstance(value, str):
            raise DatatypeError(f"{where}: {value!r} is not a string")
        return value
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise DatatypeError(f"{where}: {value!r} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise DatatypeError(f"{where}: {value!r} is not base64 text") from None


def from_wire(datatype: int, raw: Any) -> Any:
    """The JSON value of a protobuf field holding ``datatype`` (None for unsupported types)."""
    if datatype in _SIGNED_BITS:
        bits = _SIGNED_BITS[datatype]
        if raw >= (1 << bits):  # a 32-bit sign extension of a narrower type
            bits = 32 if raw < (1 << 32) else 64
        return raw - (1 << bits) if raw >= (1 << (bits - 1)) else raw
    if datatype in (17, 18):
        return base64.b64encode(raw).decode("ascii")
    if datatype in (9, 10):
        return raw if math.isfinite(raw) else None  # JSON has no NaN or infinity
    if datatype in SUPPORTED:
        return raw
    return None
