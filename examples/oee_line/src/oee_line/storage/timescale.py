"""The OEE line's time series on TimescaleDB: what differs from the plain PostgreSQL path.

Migration ``oee_line_0002`` makes ``telemetry`` a hypertable partitioned on ``sec`` (the whole epoch second of
``time``, BIGINT: hypertables take no float time) and ``telemetry_1m`` / ``_5m`` / ``_1h`` continuous
aggregates of the plain tables' shape, p50/p95 included (percentile_cont). So here:

- a batch inserts its samples only (``sec`` computed in Python as ``Rollup.bucket_of`` floors, so the
  aggregates' ``time_bucket(60, sec)`` is the plain path's bucket); TimescaleDB logs what each insert
  invalidates, and the aggregates read recent, not yet materialized buckets from the raw rows
  (real-time aggregation);
- :func:`refresh_rollups` materializes what was invalidated (``refresh_continuous_aggregate``: incremental,
  only invalidated ranges), from the start of the oldest telemetry chunk still stored: dropping chunks
  invalidates their range too, and a refresh reaching there would empty rollups kept longer than samples;
- :func:`apply_retention` drops whole chunks (``drop_chunks``; telemetry 1 day, 1 min 1 day, 5 min 7 days,
  1 h 28 days per chunk), after refreshing, rather than deleting rows (a DELETE would invalidate the
  aggregates). Retention *policies* (``add_retention_policy``) and refresh policies need TimescaleDB's
  background workers, which the store cannot count on (the test server, PGlite, has none), so it does
  the same work itself when the historian asks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Engine

from oee_line.storage.tables import ROLLUPS

if TYPE_CHECKING:
    from oee_line.storage.store import Sample

__all__ = ["apply_retention", "insert_samples", "is_hypertable", "refresh_rollups", "sec_range", "sec_window",
           "telemetry_sec"]

#: ``telemetry.sec`` (only the hypertable has it): the column TimescaleDB partitions on and excludes chunks by.
telemetry_sec = sa.column("sec", sa.BigInteger)


def sec_window(start: float | None, end: float | None) -> dict[str, int]:
    """The whole seconds bounding ``start <= time < end``: ``sec >= s0`` and ``sec < c1`` (``sec`` is
    ``floor(time)``, so ``time >= start`` gives ``sec >= floor(start)``, ``time < end`` gives ``sec < ceil(end)``);
    a bound that is None is left out."""
    out = {}
    if start is not None:
        out["s0"] = math.floor(start)
    if end is not None:
        out["c1"] = math.ceil(end)
    return out


def sec_range(start: float | None, end: float | None) -> list[ColumnElement[bool]]:
    """The predicates on :data:`telemetry_sec` implied by ``start <= time < end``, to add to a query of the hypertable
    that filters on ``time``: TimescaleDB excludes chunks only by its partition column, never by ``time``."""
    bounds, sec = sec_window(start, end), telemetry_sec
    return ([sec >= bounds["s0"]] if "s0" in bounds else []) + ([sec < bounds["c1"]] if "c1" in bounds else [])


def is_hypertable(conn: Connection) -> bool:
    """``telemetry`` (in the current schema) is a TimescaleDB hypertable."""
    if conn.dialect.name != "postgresql" or not conn.execute(
            sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first():
        return False
    return conn.execute(sa.text(
        "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = current_schema()"
        " AND hypertable_name = 'telemetry'")).first() is not None


_INSERT = sa.text("""
WITH new AS (
    INSERT INTO telemetry (machine_id, metric, time, value, quality, sec)
    SELECT * FROM unnest(CAST(:machine AS varchar[]), CAST(:metric AS varchar[]), CAST(:time AS float8[]),
                         CAST(:value AS float8[]), CAST(:quality AS varchar[]), CAST(:sec AS bigint[]))
    ON CONFLICT (machine_id, metric, time, sec) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM new
""")


def insert_samples(conn: Connection, samples: Sequence[Sample]) -> int:
    """Insert ``samples`` (unique by ``(machine_id, metric, time)``, sorted); returns how many were new."""
    if not samples:
        return 0
    return int(conn.execute(_INSERT, {
        "machine": [s.machine_id for s in samples],
        "metric": [s.metric for s in samples],
        "time": [s.time for s in samples],
        "value": [s.value for s in samples],
        "quality": [s.quality for s in samples],
        "sec": [int(s.time // 1) for s in samples],
    }).scalar_one())


_OLDEST_CHUNK = sa.text("""
SELECT min(range_start_integer) FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'
""")


def refresh_rollups(engine: Engine, everything: bool = False) -> int:
    """Materialize every level's invalidated buckets; returns how many levels were refreshed (0: no
    samples stored). ``everything``: over all time, even with no sample left (after the samples were
    deleted, this empties the aggregates: ``TimeSeriesStore.clear``)."""
    # refresh_continuous_aggregate refuses to run inside a transaction block
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        start = None if everything else conn.execute(_OLDEST_CHUNK).scalar()
        if start is None and not everything:
            return 0
        for rollup in ROLLUPS:
            conn.execute(sa.text("CALL refresh_continuous_aggregate(CAST(:view AS regclass), "
                                 "CAST(:start AS bigint), NULL)"), {"view": rollup.table.name, "start": start})
    return len(ROLLUPS)


def _drop(conn: Connection, name: str, column: str, cut: int) -> int:
    """Drop ``name``'s chunks wholly older than ``cut``; returns the rows they held."""
    count = sa.text(f"SELECT count(*) FROM {name} WHERE {column} < :cut")
    before = conn.execute(count, {"cut": cut}).scalar_one()
    conn.execute(sa.text("SELECT drop_chunks(CAST(:name AS regclass), older_than => CAST(:cut AS bigint))"),
                 {"name": name, "cut": cut})
    return int(before - conn.execute(count, {"cut": cut}).scalar_one())


def apply_retention(engine: Engine, now: float, telemetry_days: float, rollup_days: dict[str, float]) -> dict[str, int]:
    """Drop the chunks of telemetry and of each rollup level (``rollup_days`` by level name) that end
    before their retention (0: forever), after materializing what the rollups still lack; returns the
    rows dropped per table."""
    refresh_rollups(engine)
    deleted: dict[str, int] = {}
    with engine.begin() as conn:
        if telemetry_days > 0:
            deleted["telemetry"] = _drop(conn, "telemetry", "sec", int((now - telemetry_days * 86_400) // 1))
        for rollup in ROLLUPS:
            days = rollup_days[rollup.name]
            if days > 0:
                deleted[rollup.table.name] = _drop(conn, rollup.table.name, "bucket", int((now - days * 86_400) // 1))
    return deleted
