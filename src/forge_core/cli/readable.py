"""Report values for a person: times as ISO 8601, nested lists and mappings as tables, long lists cut.

Components return plain data from ``report()`` (``--json`` prints it as is, for machines and the
cross-process checks). Printed for a person, an epoch float ``1704074349.361`` becomes
``2024-01-01T01:59:09.361Z``, a list of records a small table, ``1, 2, 3, 4, 7`` ``1-4, 7``, and
anything longer than :data:`MAX_ITEMS` stops with how many more there are.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from forge_core.runtime.summary import iso_time

#: Items of a list or mapping shown inline before "… +N more".
MAX_ITEMS = 24
#: Rows of a nested table shown before "… +N more".
MAX_ROWS = 12

# Seconds since 1970 between 2000-01-01 and 2100-01-01: a float there is a wall or plant time (no
# count, ratio or duration of a run gets near 10^9); an int there only under a time-like key.
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 4_102_444_800
_TIME_KEYS = frozenset({"at", "since", "from", "to", "until", "time", "times", "ts", "timestamp", "started",
                        "ended", "stopped", "deadline", "expires", "last_beat"})
_TIME_SUFFIXES = ("_at", "_time", "_ts", "_since", "_until")


def is_time_key(key: str) -> bool:
    key = key.lower()
    return key in _TIME_KEYS or key.endswith(_TIME_SUFFIXES)


def is_epoch(value: Any, key: str = "") -> bool:
    """Whether ``value`` under ``key`` reads as seconds since 1970 (see the module doc)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not _EPOCH_MIN <= value <= _EPOCH_MAX:
        return False
    return isinstance(value, float) or is_time_key(key)


def scalar(value: Any, key: str = "") -> str:
    if is_epoch(value, key):
        return iso_time(float(value))
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
    if value is None:
        return "-"
    return str(value)


def ranges(values: list[int]) -> list[str]:
    """``[1, 2, 3, 4, 7, 9, 10]`` -> ``["1-4", "7", "9", "10"]`` (sorted input keeps its order)."""
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if prev == start else f"{start}-{prev}" if prev > start + 1 else f"{start}, {prev}")
        if value is not None:
            start = prev = value
    return parts


def _cut(items: list[str], total: int) -> str:
    shown = ", ".join(items[:MAX_ITEMS])
    return shown + (f", … +{total - MAX_ITEMS} more (--json has all)" if total > MAX_ITEMS else "")


def text(value: Any, key: str = "") -> str:
    """One line: mappings ``k: v, …``, lists ``a, b, …``, both cut after :data:`MAX_ITEMS`."""
    if isinstance(value, dict):
        if not value:
            return "-"
        items = [f"{k}: {text(v, str(k))}" for k, v in list(value.items())[:MAX_ITEMS]]
        return _cut(items, len(value))
    if isinstance(value, list | tuple | set | frozenset):
        values = sorted(value) if isinstance(value, set | frozenset) else list(value)
        if not values:
            return "-"
        if all(isinstance(v, int) and not isinstance(v, bool) and not is_epoch(v, key) for v in values) \
                and values == sorted(values) and len(values) > 2:
            parts = ranges(values)
            return _cut(parts, len(parts))
        return _cut([text(v, key) for v in values[:MAX_ITEMS]], len(values))
    return scalar(value, key)


def _records(value: Any) -> list[tuple[str | None, dict[str, Any]]] | None:
    """A list of mappings, or a mapping of mappings (first column: its keys); else None."""
    if isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        return [(None, v) for v in value]
    # a mapping of wide mappings (an odometer of 100 counters) reads better inline, cut
    if isinstance(value, dict) and value and all(isinstance(v, dict) and v for v in value.values()) \
            and max(len(v) for v in value.values()) <= 8:
        return [(str(k), v) for k, v in value.items()]
    return None


def cell(value: Any, key: str = "") -> RenderableType:
    """A report value as a table cell: records become a nested table, the rest one line of text."""
    records = _records(value)
    if records is None:
        return Text(text(value, key))
    columns: list[str] = []
    for _, record in records:
        columns += [str(k) for k in record if str(k) not in columns]
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="dim")
    keyed = records[0][0] is not None
    if keyed:
        table.add_column("")
    for column in columns:
        table.add_column(column)
    for name, record in records[:MAX_ROWS]:
        row = [text(record.get(column), column) if column in record else "" for column in columns]
        table.add_row(*([name or ""] if keyed else []), *row)
    if len(records) > MAX_ROWS:
        table.add_row(f"… +{len(records) - MAX_ROWS} more (--json has all)")
    return table
