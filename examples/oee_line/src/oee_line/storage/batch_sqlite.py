"""A batch of samples and its rollups on SQLite, as DBAPI statements built once.

``TimeSeriesStore.write`` on SQLite inserts the samples (``ON CONFLICT DO NOTHING ... RETURNING``) and
upserts the 1 min / 5 min / 1 h rollups with what it really inserted (a replayed sample reaches no
rollup), in the batch's transaction. Through SQLAlchemy Core each batch paid for the statements'
cache lookups, parameter processing and result rows: more CPU than SQLite's own work for the simulated
day's ~30-sample batches. Here the same statements go to the connection's DBAPI cursor: the INSERT as
multi-row VALUES (at most :data:`ROWS` rows a statement: 5 parameters each, under SQLite's oldest
999-parameter limit) and each rollup's upsert as one ``executemany``. The rollups' arithmetic is the
Core path's: count and sum added, min and max kept (SQLite's two-argument ``min``/``max``), p50/p95
reset to NULL (dirty) on the percentile levels; buckets by ``Rollup.bucket_of``.

A batch's state changes (:func:`add_states_sqlite`) go the same way: each is the Core path's five
statements (the event inserted unless there, the following event's start closing it, it closing the
one before), as DBAPI statements built once: through Core they cost ~1 ms a change.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from oee_line.storage.tables import ROLLUPS, Rollup

if TYPE_CHECKING:
    from oee_line.oee import StateChange
    from oee_line.storage.store import Sample

__all__ = ["ROWS", "add_states_sqlite", "insert_with_rollups_sqlite"]

ROWS = 190  # 950 parameters a statement

_INSERT = ("INSERT INTO telemetry (machine_id, metric, time, value, quality) VALUES {values} "
           "ON CONFLICT (machine_id, metric, time) DO NOTHING RETURNING machine_id, metric, time")


def _upsert(rollup: Rollup) -> str:
    dirty = ", p50 = NULL, p95 = NULL" if rollup.percentiles else ""
    return (f"INSERT INTO {rollup.table.name} (machine_id, metric, bucket, count, sum, min, max) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (machine_id, metric, bucket) DO UPDATE SET "
            f"count = count + excluded.count, sum = sum + excluded.sum, min = min(excluded.min, min), "
            f"max = max(excluded.max, max){dirty}")


_UPSERTS = [(rollup, _upsert(rollup)) for rollup in ROLLUPS]


def insert_with_rollups_sqlite(conn: Connection, samples: Sequence[Sample]) -> int:
    """Insert ``samples`` (any order, duplicates allowed) and add the new ones to every rollup; returns how
    many were new."""
    if not samples:
        return 0
    unique = {(s.machine_id, s.metric, s.time): s for s in samples}
    rows = [(s.machine_id, s.metric, s.time, s.value, s.quality) for _, s in sorted(unique.items())]
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        inserted: set[tuple[str, str, float]] = set()
        for i in range(0, len(rows), ROWS):
            chunk = rows[i:i + ROWS]
            cursor.execute(_INSERT.format(values=", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))),
                           [v for row in chunk for v in row])
            inserted.update((m, k, float(t)) for m, k, t in cursor.fetchall())
        fresh = [unique[key] for key in sorted(inserted)]
        for rollup, sql in _UPSERTS:
            groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
            for s in fresh:
                groups[(s.machine_id, s.metric, rollup.bucket_of(s.time))].append(s.value)
            if groups:
                cursor.executemany(sql, [(m, k, b, len(v), sum(v), min(v), max(v))
                                         for (m, k, b), v in sorted(groups.items())])
    finally:
        cursor.close()
    return len(fresh)


_EVENT = ("INSERT INTO events (machine_id, event_type, ts_start, payload) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (machine_id, event_type, ts_start) DO NOTHING")
_AFTER = "SELECT min(ts_start) FROM events WHERE machine_id = ? AND ts_start > ?"
_BEFORE = "SELECT max(ts_start) FROM events WHERE machine_id = ? AND ts_start < ?"
_CLOSE = "UPDATE events SET ts_end = ?, duration = ? WHERE machine_id = ? AND ts_start = ?"


def add_states_sqlite(conn: Connection, states: Sequence[tuple[str, StateChange]]) -> None:
    """Store each ``(machine, change)`` as ``TimeSeriesStore._add_state`` does (same rows, same order)."""
    if not states:
        return
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for machine_id, change in states:
            ts = change.ts
            cursor.execute(_EVENT, (machine_id, change.state, ts, json.dumps({"fault_code": change.fault_code})))
            after = cursor.execute(_AFTER, (machine_id, ts)).fetchone()[0]
            if after is not None:  # a change arriving late: it lasts until the next one already stored
                cursor.execute(_CLOSE, (after, after - ts, machine_id, ts))
            before = cursor.execute(_BEFORE, (machine_id, ts)).fetchone()[0]
            if before is not None:
                cursor.execute(_CLOSE, (ts, ts - before, machine_id, before))
    finally:
        cursor.close()
