"""A sensor reading as the processor sees it, parsed from ``mms.sensor_reading`` (the schema already passed).

What a schema cannot say is checked here and refused with the field at fault: a value that is not a
finite number, a kind the processor does not know, a unit that is not its kind's, a timestamp that is
not RFC 3339.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["SENSOR_ALERT", "SENSOR_READING", "MalformedReading", "Reading", "parse_reading"]

SENSOR_READING = "mms.sensor_reading"
SENSOR_ALERT = "mms.sensor_alert"


class MalformedReading(ValueError):
    """A reading the processor cannot judge: ``pointer`` names the field (JSON pointer)."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


@dataclass(frozen=True, slots=True)
class Reading:
    sensor_id: str
    kind: str
    location: str
    seq: int
    value: float
    unit: str
    ts: float  # the timestamp, epoch seconds (UTC)
    timestamp: str  # as the sensor wrote it
    anomaly: str | None = None  # ground truth of a simulator; never used to judge


#: Reading's slot setters in field order: :func:`_reading` fills a new one without the frozen ``__init__``
#: (which sets each of the nine fields through ``object.__setattr__``: half of a parse's cost)
(_S_SENSOR_ID, _S_KIND, _S_LOCATION, _S_SEQ, _S_VALUE, _S_UNIT, _S_TS, _S_TIMESTAMP, _S_ANOMALY) = (
    getattr(Reading, name).__set__
    for name in ("sensor_id", "kind", "location", "seq", "value", "unit", "ts", "timestamp", "anomaly"))
_new = object.__new__


def _reading(sensor_id: str, kind: str, location: str, seq: int, value: float, unit: str, ts: float,
             timestamp: str, anomaly: str | None) -> Reading:
    """``Reading(...)`` of these fields (the same frozen object: equal, hashed and refusing a set alike)."""
    reading = _new(Reading)
    _S_SENSOR_ID(reading, sensor_id)
    _S_KIND(reading, kind)
    _S_LOCATION(reading, location)
    _S_SEQ(reading, seq)
    _S_VALUE(reading, value)
    _S_UNIT(reading, unit)
    _S_TS(reading, ts)
    _S_TIMESTAMP(reading, timestamp)
    _S_ANOMALY(reading, anomaly)
    return reading


#: "YYYY-MM-DDTHH:MM:SS." of times parsed in the shape ``format_time`` writes -> its epoch second
_SECONDS: dict[str, int] = {}


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an RFC 3339 time; a time without an offset is UTC.

    A time in ``forge_core.format_time``'s shape (``...THH:MM:SS.ffffffZ``) whose second was parsed before
    is its second's cached epoch plus the six digits, the same float as ``datetime``'s (both divide the
    whole microseconds by 10**6); every other text, and a second's first, goes through ``datetime``."""
    if len(text) == 27 and text[26] == "Z" and text[19] == ".":
        second = _SECONDS.get(text[:20])
        digits = text[20:26]
        if second is not None and digits.isdigit() and digits.isascii():
            return (second * 1_000_000 + int(digits)) / 1_000_000
        at = datetime.fromisoformat(text)
        if digits.isdigit() and digits.isascii() and at.microsecond == int(digits):
            if len(_SECONDS) >= 4096:  # a day of 9 sensors is 86,400 seconds: keep the recent ones only
                _SECONDS.clear()
            _SECONDS[text[:20]] = int(at.replace(microsecond=0).timestamp())
        return at.timestamp()
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def parse_reading(payload: Mapping[str, Any], kinds: Mapping[str, str]) -> Reading:
    """The reading in ``payload``; raises :class:`MalformedReading` naming the field at fault."""
    try:
        sensor_id, kind, unit = payload["sensor_id"], payload["kind"], payload["unit"]
        seq, value, timestamp = payload["seq"], payload["value"], payload["timestamp"]
    except KeyError as exc:
        raise MalformedReading(f"/{exc.args[0]}", "missing") from None
    if not isinstance(sensor_id, str) or not sensor_id:
        raise MalformedReading("/sensor_id", f"not a sensor id: {sensor_id!r}")
    if type(seq) is not int or seq < 1:
        raise MalformedReading("/seq", f"not a positive integer: {seq!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedReading("/value", f"not a finite number: {value!r}")
    if kind not in kinds:
        raise MalformedReading("/kind", f"unknown kind {kind!r}; this processor takes {', '.join(sorted(kinds))} "
                                        f"(param kinds)")
    if unit != kinds[kind]:
        raise MalformedReading("/unit", f"{unit!r} is not the unit of {kind} ({kinds[kind]!r}, param kinds)")
    if not isinstance(timestamp, str):
        raise MalformedReading("/timestamp", f"not an RFC 3339 time: {timestamp!r}")
    try:
        ts = parse_timestamp(timestamp)
    except ValueError:
        raise MalformedReading("/timestamp", f"not an RFC 3339 time: {timestamp!r}") from None
    anomaly = payload.get("anomaly")
    return _reading(sensor_id, kind, str(payload.get("location") or ""), seq, float(value), unit, ts, timestamp,
                    anomaly if isinstance(anomaly, str) else None)
