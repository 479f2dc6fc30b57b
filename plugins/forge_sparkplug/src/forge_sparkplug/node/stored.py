"""The outbox body of one update: what store-and-forward, the link proof's copy and the host look-back hold.

``{"d": device, "m": [[name, value, timestamp], ...]}`` as ``json.dumps`` writes it (its default separators,
ASCII, ``NaN``/``Infinity`` for a float that is not finite): the same bytes, so the same sizes for the look-back's
byte bound. Made for every live DATA (the link proof's copy), so built here from the entries' JSON texts rather than
through ``json.dumps``, whose encoder is made anew for every call; a value of another type than the common ones
(a str, int, float, bool or None) is written by ``json.dumps`` itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii
from typing import Any

from forge_sparkplug.node.metrics import Entry

__all__ = ["stored_body"]


def _text(value: Any) -> str:
    """``value`` as ``json.dumps`` writes it inside a list."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value == math.inf:
            return "Infinity"
        if value == -math.inf:
            return "-Infinity"
        return float.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return json.dumps(value)


def stored_body(device: str | None, entries: Iterable[Entry]) -> bytes:
    """``json.dumps({"d": device, "m": [[e.name, e.value, e.timestamp] for e in entries]}).encode()``, byte for
    byte. A timestamp is the table's int (``MetricTable.apply`` stores ``int()`` of it): written as the f-string
    writes an int, as ``json.dumps`` does, with no ``_text`` call a metric (every metric of every live DATA). No
    format spec (``:d``) in the f-string: compiled (mypyc), one turned every field of it into a ``str.format`` call."""
    rows = ", ".join([f"[{encode_basestring_ascii(e.name)}, {_text(e.value)}, {e.timestamp}]" for e in entries])
    return f'{{"d": {_text(device)}, "m": [{rows}]}}'.encode()
