"""Sparkplug B payloads to and from bytes: :class:`Metric` and :class:`Payload` in plain Python, the
protobuf message (``forge_sparkplug.proto``) only inside :func:`encode` and :func:`decode`.

The STATE message of a host application is JSON, not protobuf (spec §6.4.2): :func:`state_body`
and :func:`read_state`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError as _ProtobufDecodeError

from forge_sparkplug.codec.datatypes import BY_NUMBER, FIELD, from_wire, to_wire
from forge_sparkplug.proto.sparkplug_b_pb2 import Payload as _Payload

__all__ = ["Metric", "Payload", "PayloadError", "decode", "encode", "read_state", "state_body"]


class PayloadError(ValueError):
    """Bytes that are not a Sparkplug B payload (or a STATE body that is not the spec's JSON)."""


@dataclass(slots=True)
class Metric:
    """One metric of a payload. ``value`` is the JSON value (see ``codec.datatypes``); ``None`` with
    ``is_null`` is an explicit null. ``timestamp`` is ms since the epoch (UTC)."""

    name: str | None = None
    alias: int | None = None
    datatype: int | None = None
    value: Any = None
    timestamp: int | None = None
    is_historical: bool = False
    is_null: bool = False
    is_transient: bool = False
    #: Set when read: the value's datatype is one this codec does not decode (arrays, DataSet, ...).
    unsupported: bool = False


@dataclass(slots=True)
class Payload:
    timestamp: int | None = None
    metrics: list[Metric] = field(default_factory=list)
    seq: int | None = None


def encode(timestamp: int, metrics: Iterable[Metric], seq: int | None = None, *,
           datatype_of: dict[int, int] | None = None) -> bytes:
    """A payload's bytes. A metric without ``datatype`` takes it from ``datatype_of`` (alias ->
    datatype) to convert its value; the datatype itself is written only when the metric has one."""
    message = _Payload()
    message.timestamp = timestamp
    if seq is not None:
        message.seq = seq
    for metric in metrics:
        out = message.metrics.add()
        if metric.name is not None:
            out.name = metric.name
        if metric.alias is not None:
            out.alias = metric.alias
        if metric.timestamp is not None:
            out.timestamp = metric.timestamp
        datatype = metric.datatype
        if datatype is not None:
            out.datatype = datatype
        elif datatype_of is not None and metric.alias is not None:
            datatype = datatype_of.get(metric.alias)
        if metric.is_historical:
            out.is_historical = True
        if metric.is_transient:
            out.is_transient = True
        if metric.is_null or metric.value is None:
            out.is_null = True
        elif datatype is not None:
            setattr(out, FIELD.get(datatype, "string_value"),
                    to_wire(datatype, metric.value, metric.name or metric.alias))
    return message.SerializeToString()


def decode(body: bytes, *, datatype_of: dict[int, int] | None = None) -> Payload:
    """A payload from bytes; :class:`PayloadError` if they are not one. A metric without a datatype
    (DATA messages usually omit it) is read with ``datatype_of`` (alias -> datatype from the birth).

    Runs for every DATA the host reads, so a field is asked ``HasField`` only when its value is the field's
    default (a set alias or timestamp is seldom 0, a set name seldom empty), and each datatype's field and
    conversion come from one table (:data:`_READ`: :func:`from_wire`'s, with None where it returns the raw
    value); the same :class:`Metric` as a ``HasField`` per field and ``from_wire`` give
    (tests/codec/test_decode_fast.py)."""
    message = _Payload()
    try:
        message.ParseFromString(body)
    except (_ProtobufDecodeError, RuntimeWarning) as exc:
        raise PayloadError(f"not a Sparkplug B payload ({len(body)} bytes): {exc}") from None
    metrics = []
    read = _READ
    for item in message.metrics:
        has = item.HasField
        alias: int | None = item.alias
        if not alias and not has("alias"):
            alias = None
        datatype: int | None = item.datatype
        if not datatype and not has("datatype"):
            datatype = None
            if alias is not None and datatype_of is not None:
                datatype = datatype_of.get(alias)
        which = item.WhichOneof("value")
        value = None
        unsupported = False
        if which is not None:
            reader = read.get(datatype) if datatype is not None else None
            if reader is not None and reader[0] == which:
                value = getattr(item, which)
                if reader[1] is not None:
                    value = reader[1](value)
            else:  # a field that is not the datatype's, or a value without a known datatype: not read
                unsupported = True
        name: str | None = item.name
        if not name and not has("name"):
            name = None
        timestamp: int | None = item.timestamp
        if not timestamp and not has("timestamp"):
            timestamp = None
        metrics.append(Metric(name, alias, datatype, value, timestamp, item.is_historical, item.is_null,
                              item.is_transient, unsupported))
    return Payload(message.timestamp if message.HasField("timestamp") else None, metrics,
                   message.seq if message.HasField("seq") else None)


#: the datatypes whose value :func:`from_wire` returns as the field holds it (unsigned integers, DateTime, Boolean, the
#: string types); signed integers, Float/Double (NaN, infinity) and Bytes/File (base64) are converted
_RAW = frozenset(FIELD) - {1, 2, 3, 4, 9, 10, 17, 18}
#: datatype -> (the oneof field its value travels in, from_wire of that datatype or None where it returns the field
#: as it is)
_READ: dict[int, tuple[str, Callable[[Any], Any] | None]] = {
    datatype: (field_name, None if datatype in _RAW else partial(from_wire, datatype))
    for datatype, field_name in FIELD.items()}


def datatype_name(number: int | None) -> str:
    return BY_NUMBER.get(number, "Unknown") if number is not None else "Unknown"


def state_body(online: bool, timestamp: int) -> bytes:
    """A host application's STATE payload: ``{"online": ..., "timestamp": ...}`` (spec §6.4.2)."""
    return json.dumps({"online": online, "timestamp": timestamp}, separators=(",", ":")).encode()


def read_state(body: bytes) -> tuple[bool, int]:
    """``(online, timestamp)`` of a STATE payload; :class:`PayloadError` if it is not the spec's JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"STATE payload is not JSON: {exc}") from None
    online, timestamp = (data.get("online"), data.get("timestamp")) if isinstance(data, dict) else (None, None)
    if not isinstance(online, bool) or isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise PayloadError(f"STATE payload {body[:100]!r} lacks a boolean 'online' and a numeric 'timestamp'")
    return online, int(timestamp)
