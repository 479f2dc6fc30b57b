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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from oee_line.storage.tables import ROLLUPS, Rollup

if TYPE_CHECKING:
    from oee_line.storage.store import Sample

__all__ = ["ROWS", "insert_with_rollups_sqlite"]

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
