"""Sparkplug B payloads to and from bytes: :class:`Metric` and :class:`Payload` in plain Python, the
protobuf message (``forge_sparkplug.proto``) only inside :func:`encode` and :func:`decode`.

The STATE message of a host application is JSON, not protobuf (spec §6.4.2): :func:`state_body`
and :func:`read_state`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
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
                    to_wire(datatype, metric.value, metric.name or str(metric.alias)))
    return message.SerializeToString()


def decode(body: bytes, *, datatype_of: dict[int, int] | None = None) -> Payload:
    """A payload from bytes; :class:`PayloadError` if they are not one. A metric without a datatype
    (DATA messages usually omit it) is read with ``datatype_of`` (alias -> datatype from the birth)."""
    message = _Payload()
    try:
        message.ParseFromString(body)
    except (_ProtobufDecodeError, RuntimeWarning) as exc:
        raise PayloadError(f"not a Sparkplug B payload ({len(body)} bytes): {exc}") from None
    metrics = []
    for item in message.metrics:
        alias = item.alias if item.HasField("alias") else None
        datatype = item.datatype if item.HasField("datatype") else None
        if datatype is None and alias is not None and datatype_of is not None:
            datatype = datatype_of.get(alias)
        which = item.WhichOneof("value")
        value = None
        unsupported = False
        if which is not None and datatype is not None:
            if FIELD.get(datatype) == which:
                value = from_wire(datatype, getattr(item, which))
            else:
                unsupported = True
        elif which is not None:
            unsupported = True  # a value without a known datatype cannot be read safely
        metrics.append(Metric(
            name=item.name if item.HasField("name") else None, alias=alias, datatype=datatype, value=value,
            timestamp=item.timestamp if item.HasField("timestamp") else None,
            is_historical=item.is_historical, is_null=item.is_null, is_transient=item.is_transient,
            unsupported=unsupported))
    return Payload(message.timestamp if message.HasField("timestamp") else None, metrics,
                   message.seq if message.HasField("seq") else None)


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
