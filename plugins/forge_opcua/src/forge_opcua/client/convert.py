"""OPC UA data values as JSON payloads: status codes to quality, values and timestamps to JSON.

A status code's two top bits are its severity (OPC UA Part 4, 7.39): 00 Good, 01 Uncertain,
10 and 11 Bad. That is the quality a message carries; the code's name and number go with it so
nothing the server said is lost.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import functools
import math
import uuid
from dataclasses import dataclass
from typing import Any, cast

from asyncua import ua

__all__ = ["DATA_CHANGE", "Tag", "epoch_seconds", "json_value", "make_node_id", "payload_of", "quality_of",
           "status_name", "utc"]

#: The message type of a data change; its schema is schemas/opcua.data_change.json.
DATA_CHANGE = "opcua.data_change"

_SEVERITY = {0: "good", 1: "uncertain", 2: "bad", 3: "bad"}
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def make_node_id(identifier: Any, namespace: int, kind: ua.NodeIdType | None = None) -> ua.NodeId:
    """A NodeId from plain Python values (asyncua annotates its fields with its own int/str subclasses)."""
    if kind is None:
        return ua.NodeId(identifier, cast(ua.Int16, namespace))
    return ua.NodeId(identifier, cast(ua.Int16, namespace), kind)


def utc(seconds: float) -> ua.DateTime:
    """Epoch seconds as the UTC date-time asyncua wants in a DataValue."""
    return cast(ua.DateTime, dt.datetime.fromtimestamp(seconds, dt.UTC))


@dataclass(frozen=True)
class Tag:
    """A monitored node: its id, the name messages carry, and the client handle of its monitored item."""

    node_id: ua.NodeId
    name: str
    handle: int

    @functools.cached_property
    def node_text(self) -> str:  # once per tag: NodeId.to_string() costs more than the rest of a payload
        return self.node_id.to_string()


def quality_of(code: ua.StatusCode | int | None) -> str:
    """good, uncertain or bad from a status code's severity bits (no code at all means Good)."""
    value = 0 if code is None else code if isinstance(code, int) else code.value
    return _SEVERITY[(value >> 30) & 0b11]


def status_name(code: ua.StatusCode | None) -> str:
    if code is None:
        return "Good"
    try:
        return code.name
    except Exception:  # a vendor code asyncua does not know
        return f"0x{code.value:08X}"


def epoch_seconds(when: dt.datetime | None) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # OPC UA times are UTC; asyncua may hand them naive
    return when.timestamp()


def json_value(value: Any) -> Any:
    """A variant's value as JSON: scalars as they are, NaN and infinities as strings, date-times as
    epoch seconds, bytes as base64, OPC UA built-ins as their text, structures as objects."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else _NON_FINITE[value]
    if isinstance(value, dt.datetime):
        return epoch_seconds(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, ua.LocalizedText):
        return value.Text
    if isinstance(value, ua.QualifiedName):
        return value.to_string()
    if isinstance(value, ua.NodeId):
        return value.to_string()
    if isinstance(value, ua.StatusCode):
        return status_name(value)
    if isinstance(value, ua.Variant):
        return json_value(value.Value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: json_value(getattr(value, field.name)) for field in dataclasses.fields(value)}
    return str(value)


def payload_of(tag: Tag, data: ua.DataValue, endpoint: str) -> dict[str, Any]:
    """The ``opcua.data_change`` payload of one notification of ``tag``."""
    variant = data.Value
    code = data.StatusCode
    return {
        "node_id": tag.node_text,
        "tag": tag.name,
        "value": json_value(variant.Value) if variant is not None else None,
        "data_type": variant.VariantType.name if variant is not None and variant.Value is not None else None,
        "status": status_name(code),
        "status_code": 0 if code is None else code.value,
        "quality": quality_of(code),
        "source_timestamp": epoch_seconds(data.SourceTimestamp),
        "server_timestamp": epoch_seconds(data.ServerTimestamp),
        "endpoint": endpoint,
    }
