"""A batch of samples and its rollups on SQLite, as DBAPI statements built once.

``TimeSeriesStore.write`` on SQLite inserts the samples (``ON CONFLICT DO NOTHING``, the new ones known by the
rowcount, else by rowid: :func:`insert_samples_sqlite`) and
upserts the 1 min / 5 min / 1 h rollups with what it really inserted (a replayed sample reaches no
rollup), in the batch's transaction. Through SQLAlchemy Core each batch paid for the statements'
cache lookups, parameter processing and result rows: more CPU than SQLite's own work for the simulated
day's ~30-sample batches. Here the same statements go to the connection's DBAPI cursor, compiled once
from Core statements of :mod:`oee_line.storage.tables` (:class:`forge_core.storage.DriverStatement`): the
INSERT as multi-row VALUES (``DriverSql.execute_rows``: up to 500 rows a statement, under SQLite's
parameter limit) and each rollup's upsert as one ``executemany``. The rollups' arithmetic is the Core
path's: count and sum added, min and max kept (SQLite's two-argument ``min``/``max``), p50/p95
reset to NULL (dirty) on the percentile levels; buckets by ``Rollup.bucket_of``.

A batch's state changes (:func:`add_states_sqlite`) go the same way: each is the Core path's five
statements (the event inserted unless there, the following event's start closing it, it closing the
one before), on the driver's cursor: through Core they cost ~1 ms a change. The samples' and rollups'
rows hold floats, ints and strings, passed to sqlite3 as they are (``typed=False``); the event's payload
goes through the JSON type (the text Core stores).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import insert

from forge_core.storage import DriverSqlError, DriverStatement, driver_cursor
from oee_line.storage.tables import ROLLUPS, Rollup, events, telemetry

if TYPE_CHECKING:
    from oee_line.oee import StateChange
    from oee_line.storage.store import Sample

__all__ = ["LevelRows", "add_states_sqlite", "insert_samples_sqlite", "insert_with_rollups_sqlite", "rollup_rows",
           "upsert_rollups_sqlite"]

_SAMPLE = ("machine_id", "metric", "time", "value", "quality")
_INSERT_NEW = insert(telemetry).on_conflict_do_nothing(index_elements=["machine_id", "metric", "time"])
_INSERT = DriverStatement("oee_line samples insert", _INSERT_NEW.returning(
    telemetry.c.machine_id, telemetry.c.metric, telemetry.c.time), fields=_SAMPLE, typed=False)
_INSERT_PLAIN = DriverStatement(  # the same without RETURNING: see insert_samples_sqlite
    "oee_line samples insert", _INSERT_NEW, fields=_SAMPLE, typed=False)
_NEW_ROWS = "SELECT machine_id, metric, time FROM telemetry WHERE rowid > ? AND rowid <= ?"


def _upsert(rollup: Rollup) -> DriverStatement:
    """count and sum added, min and max kept (SQLite's two-argument min/max), p50/p95 NULL (dirty)."""
    table = rollup.table
    stmt = insert(table)
    new, old = stmt.excluded, table.c
    dirty = {"p50": sa.null(), "p95": sa.null()} if rollup.percentiles else {}
    fields = ("machine_id", "metric", "bucket", "count", "sum", "min", "max")
    return DriverStatement(f"oee_line {table.name} upsert", stmt.on_conflict_do_update(
        index_elements=["machine_id", "metric", "bucket"],
        set_={"count": old.count + new.count, "sum": old.sum + new.sum, "min": sa.func.min(new.min, old.min),
              "max": sa.func.max(new.max, old.max), **dirty}), columns=fields, fields=fields, typed=False)


_UPSERTS = [(rollup, _upsert(rollup)) for rollup in ROLLUPS]


def insert_with_rollups_sqlite(conn: Connection, samples: Sequence[Sample]) -> int:
    """Insert ``samples`` (any order, duplicates allowed) and add the new ones to every rollup; returns how
    many were new."""
    fresh = insert_samples_sqlite(conn, samples)
    if fresh:
        upsert_rollups_sqlite(conn, rollup_rows(fresh))
    return len(fresh)


def insert_samples_sqlite(conn: Connection, samples: Sequence[Sample]) -> list[Sample]:
    """Insert ``samples`` (any order, duplicates allowed); returns those really inserted, sorted by
    ``(machine_id, metric, time)`` (a replayed sample is not among them).

    A batch of one statement goes in without ``RETURNING`` (its rows cost SQLite an ephemeral table and
    Python a tuple each: ~10 k instructions a sample): the cursor's ``rowcount`` says how many were new, and
    when that is all of them (every batch but a replay's) they are the batch. When some were there, the new
    ones are read back by ``rowid``: a table without AUTOINCREMENT gives an inserted row the largest rowid
    plus one (``oee_line.storage.ranks_sorted`` relies on it too), so the statement's new rows are the
    ``rowcount`` rowids up to ``lastrowid``."""
    if not samples:
        return []
    unique = {(s.machine_id, s.metric, s.time): s for s in samples}
    keys = sorted(unique)
    rows = [(s.machine_id, s.metric, s.time, s.value, s.quality) for s in map(unique.__getitem__, keys)]
    with driver_cursor(conn) as cursor:
        plain = _INSERT_PLAIN.on(conn)
        if len(rows) > plain.rows_per_statement:  # several statements: each one's new rows returned
            inserted = {(m, k, float(t)) for m, k, t in _INSERT.on(conn).execute_rows(cursor, rows)}
            return [unique[key] for key in sorted(inserted)]
        plain.execute_rows(cursor, rows)
        new, last = cursor.rowcount, cursor.lastrowid
        if new == len(rows):
            return [unique[key] for key in keys]
        if new <= 0:
            return []
        cursor.execute(_NEW_ROWS, (last - new, last))
        inserted = {(m, k, float(t)) for m, k, t in cursor.fetchall()}
    if len(inserted) != new:  # rowids not given in order (the largest rowid was taken): never in practice
        raise DriverSqlError(f"oee_line samples insert: {new} rows inserted, {len(inserted)} found by rowid")
    return [unique[key] for key in sorted(inserted)]


#: per rollup level, ``(machine_id, metric, bucket, count, sum, min, max)`` rows to upsert
LevelRows = list[list[tuple[str, str, int, int, float, float, float]]]


def rollup_rows(fresh: Sequence[Sample]) -> LevelRows:
    """``fresh`` samples grouped by bucket, per level of ``ROLLUPS``, each level's rows sorted."""
    out: LevelRows = []
    for rollup in ROLLUPS:
        groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for s in fresh:
            groups[(s.machine_id, s.metric, rollup.bucket_of(s.time))].append(s.value)
        out.append([(m, k, b, len(v), sum(v), min(v), max(v)) for (m, k, b), v in sorted(groups.items())])
    return out


def upsert_rollups_sqlite(conn: Connection, levels: LevelRows) -> None:
    """Add each level's rows to its rollup table (count and sum added, min and max kept, dirty)."""
    with driver_cursor(conn) as cursor:
        for (_, upsert), rows in zip(_UPSERTS, levels, strict=True):
            if rows:
                upsert.on(conn).executemany(cursor, rows)


_c = events.c
_EVENT = DriverStatement(  # typed: the payload as the JSON type's text
    "oee_line event insert", insert(events).on_conflict_do_nothing(index_elements=["machine_id", "event_type",
                                                                                   "ts_start"]),
    columns=("machine_id", "event_type", "ts_start", "payload"), fields=("machine_id", "event_type", "ts_start",
                                                                         "payload"))
_AFTER = DriverStatement("oee_line next event", sa.select(sa.func.min(_c.ts_start)).where(
    _c.machine_id == sa.bindparam("m"), _c.ts_start > sa.bindparam("ts")), fields=("m", "ts"), typed=False)
_BEFORE = DriverStatement("oee_line previous event", sa.select(sa.func.max(_c.ts_start)).where(
    _c.machine_id == sa.bindparam("m"), _c.ts_start < sa.bindparam("ts")), fields=("m", "ts"), typed=False)
_CLOSE = DriverStatement("oee_line event close", events.update().where(
    _c.machine_id == sa.bindparam("m"), _c.ts_start == sa.bindparam("start")).values(
    ts_end=sa.bindparam("end"), duration=sa.bindparam("duration")), fields=("end", "duration", "m", "start"),
    typed=False)


def add_states_sqlite(conn: Connection, states: Sequence[tuple[str, StateChange]]) -> None:
    """Store each ``(machine, change)`` as ``TimeSeriesStore._add_state`` does (same rows, same order)."""
    if not states:
        return
    event, after_of, before_of, close = (_EVENT.on(conn), _AFTER.on(conn), _BEFORE.on(conn), _CLOSE.on(conn))
    cursor: Any
    with driver_cursor(conn) as cursor:
        for machine_id, change in states:
            ts = change.ts
            event.execute(cursor, (machine_id, change.state, ts, {"fault_code": change.fault_code}))
            after = after_of.execute(cursor, (machine_id, ts)).fetchone()[0]
            if after is not None:  # a change arriving late: it lasts until the next one already stored
                close.execute(cursor, (after, after - ts, machine_id, ts))
            before = before_of.execute(cursor, (machine_id, ts)).fetchone()[0]
            if before is not None:
                close.execute(cursor, (ts, ts - before, machine_id, before))
