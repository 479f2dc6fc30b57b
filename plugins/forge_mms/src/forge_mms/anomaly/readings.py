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


class _Filling:
    """Reading's slots without its frozen ``__setattr__``: :func:`parse_reading` fills one with plain
    attribute stores, then makes it a Reading (the same slots in the same order, so CPython allows the ``__class__``
    change). The frozen ``__init__`` sets each of the nine fields through ``object.__setattr__`` (half of a
    parse's cost), the slots' own setters called one by one half as much again."""

    __slots__ = Reading.__slots__  # dataclass(slots=True) made them: Reading's fields, not repeated here


_new = object.__new__
_finite = math.isfinite
_set = object.__setattr__


#: ("YYYY-MM-DDTHH:MM:SS.", its epoch second) of the last second parsed in the shape ``format_time`` writes,
#: swapped whole; the head never matches before a first parse (no text starts with a NUL)
_last_second: tuple[str, int] = ("\0", 0)
#: ("YYYY-MM-DDTHH:MM:", its epoch second) of the last minute parsed through ``datetime``, alike: a new second
#: of that minute is its start plus the seconds' two digits (UTC has no leap second in epoch time)
_last_minute: tuple[str, int] = ("\0", 0)


def parse_timestamp(text: str) -> float:
    """Epoch seconds of an RFC 3339 time; a time without an offset is UTC.

    A time in ``forge_core.format_time``'s shape (``...THH:MM:SS.ffffffZ``) of the second parsed last
    is its second's cached epoch plus the six digits, the same float as ``datetime``'s (both divide the
    whole microseconds by 10**6): a prefix test, not a slice hashed for a lookup (readings come in time
    order, many to a second); every other text, and a second's first, goes through ``datetime``."""
    head, second = _last_second
    if text.startswith(head) and len(text) == 27 and text[26] == "Z":
        digits = text[20:26]
        if digits.isdigit() and digits.isascii():  # (isdigit alone takes "٣" and "²")
            return (second * 1_000_000 + int(digits)) / 1_000_000
    return _parse_new_second(text)


def _parse_new_second(text: str) -> float:
    """``parse_timestamp`` of a second not parsed last. A text in ``format_time``'s shape keeps its second for
    the next; one of the minute last parsed by ``datetime`` is that minute's epoch plus its seconds (a second
    in 00-59, the rest as the fast path checks: a text ``datetime`` takes, the same float); every other text,
    and a minute's first, by ``datetime``, its minute kept."""
    global _last_second, _last_minute
    if len(text) == 27 and text[26] == "Z" and text[19] == ".":
        digits, seconds = text[20:26], text[17:19]
        if (text.startswith(_last_minute[0]) and seconds < "60" and seconds.isdigit() and seconds.isascii()
                and digits.isdigit() and digits.isascii()):
            second = _last_minute[1] + int(seconds)
            _last_second = (text[:20], second)
            return (second * 1_000_000 + int(digits)) / 1_000_000
        at = datetime.fromisoformat(text)
        if digits.isdigit() and digits.isascii() and at.microsecond == int(digits):
            second = int(at.replace(microsecond=0).timestamp())
            _last_second = (text[:20], second)
            _last_minute = (text[:17], second - at.second)
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
    # a float (every reading from JSON) skips the type checks, which refuse a bool and what is not a number
    if (type(value) is not float and (isinstance(value, bool) or not isinstance(value, (int, float)))
            or not _finite(value)):
        raise MalformedReading("/value", f"not a finite number: {value!r}")
    expected_unit = kinds.get(kind)
    if expected_unit is None:
        raise MalformedReading("/kind", f"unknown kind {kind!r}; this processor takes {', '.join(sorted(kinds))} "
                                        f"(param kinds)")
    if unit != expected_unit:
        raise MalformedReading("/unit", f"{unit!r} is not the unit of {kind} ({kinds[kind]!r}, param kinds)")
    if not isinstance(timestamp, str):
        raise MalformedReading("/timestamp", f"not an RFC 3339 time: {timestamp!r}")
    # parse_timestamp's fast path (the second parsed last), inline: a call less per reading
    head, second = _last_second
    digits = timestamp[20:26]
    if (timestamp.startswith(head) and len(timestamp) == 27 and timestamp[26] == "Z" and digits.isdigit()
            and digits.isascii()):
        ts = (second * 1_000_000 + int(digits)) / 1_000_000
    else:
        try:
            ts = _parse_new_second(timestamp)
        except ValueError:
            raise MalformedReading("/timestamp", f"not an RFC 3339 time: {timestamp!r}") from None
    anomaly, location = payload.get("anomaly"), payload.get("location")
    # Reading(...) of the fields (the same frozen object: equal, hashed and refusing a set alike), filled on a
    # _Filling; a str location and a float value (every reading from JSON) are kept as they are: no conversion call
    reading: Any = _new(_Filling)
    reading.sensor_id = sensor_id
    reading.kind = kind
    reading.location = location if type(location) is str else str(location or "")
    reading.seq = seq
    reading.value = value if type(value) is float else float(value)
    reading.unit = unit
    reading.ts = ts
    reading.timestamp = timestamp
    reading.anomaly = anomaly if isinstance(anomaly, str) else None
    _set(reading, "__class__", Reading)
    return reading  # a Reading now
