"""A batch of samples and its rollups in one PostgreSQL statement (one round trip instead of four).

``TimeSeriesStore.write`` inserted the samples (``ON CONFLICT DO NOTHING ... RETURNING``) and then
upserted the 1 min / 5 min / 1 h rollups with what came back: four statements, four round trips per
batch, which under load is most of the historian's share of a tag's way to its stored row
(bench_oee_tag_row). Here the same work is one statement of data-modifying CTEs: the samples travel
as arrays (``unnest``), ``fresh`` is what the INSERT really inserted (its RETURNING joined back to the
input, so a replayed sample is still added to no rollup), and each rollup is upserted from ``fresh``
grouped by bucket. PostgreSQL runs every data-modifying CTE exactly once, in the statement's
transaction: all of it or none of it commits, as before. Buckets are computed in Python
(``Rollup.bucket_of``, float floor division) and sent along, so they are the SQLite path's to the bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection

from oee_line.storage.tables import ROLLUPS

if TYPE_CHECKING:
    from oee_line.storage.store import Sample

__all__ = ["insert_with_rollups"]


def _rollup_cte(index: int, name: str, percentiles: bool) -> str:
    dirty = ", p50 = NULL, p95 = NULL" if percentiles else ""  # refresh_percentiles recomputes them
    return f"""r{name} AS (
    INSERT INTO telemetry_{name} AS r (machine_id, metric, bucket, count, sum, min, max)
    SELECT machine_id, metric, b{index}, count(*), sum(value), min(value), max(value)
    FROM fresh GROUP BY machine_id, metric, b{index} ORDER BY machine_id, metric, b{index}
    ON CONFLICT (machine_id, metric, bucket) DO UPDATE SET
        count = r.count + excluded.count, sum = r.sum + excluded.sum,
        min = least(r.min, excluded.min), max = greatest(r.max, excluded.max){dirty}
    RETURNING 1
)"""


# ORDER BY in the upserts: batches of one machine take their row locks in the same order, as the sorted
# executemany rows did (two writers never deadlock on each other's buckets).
_STATEMENT = sa.text(
    """WITH input AS (
    SELECT * FROM unnest(CAST(:machine AS varchar[]), CAST(:metric AS varchar[]), CAST(:time AS float8[]),
                         CAST(:value AS float8[]), CAST(:quality AS varchar[]), CAST(:b0 AS bigint[]),
                         CAST(:b1 AS bigint[]), CAST(:b2 AS bigint[]))
        AS i(machine_id, metric, time, value, quality, b0, b1, b2)
),
new AS (
    INSERT INTO telemetry (machine_id, metric, time, value, quality)
    SELECT machine_id, metric, time, value, quality FROM input ORDER BY machine_id, metric, time
    ON CONFLICT (machine_id, metric, time) DO NOTHING
    RETURNING machine_id, metric, time
),
fresh AS MATERIALIZED (SELECT input.* FROM input JOIN new USING (machine_id, metric, time)),
"""
    + ",\n".join(_rollup_cte(i, r.name, r.percentiles) for i, r in enumerate(ROLLUPS))
    + "\nSELECT count(*) FROM fresh"  # the rollup CTEs run whether read or not
)


def insert_with_rollups(conn: Connection, samples: Sequence[Sample]) -> int:
    """Insert ``samples`` (unique by ``(machine_id, metric, time)``, sorted) and add the new ones to
    every rollup, in one statement; returns how many were new."""
    if not samples:
        return 0
    if len(ROLLUPS) != 3:  # the statement names three bucket columns
        raise RuntimeError(f"oee_line storage: insert_with_rollups expects 3 rollup levels, got {len(ROLLUPS)}")
    args = {
        "machine": [s.machine_id for s in samples],
        "metric": [s.metric for s in samples],
        "time": [s.time for s in samples],
        "value": [s.value for s in samples],
        "quality": [s.quality for s in samples],
    } | {f"b{i}": [r.bucket_of(s.time) for s in samples] for i, r in enumerate(ROLLUPS)}
    fresh = conn.execute(_STATEMENT, args).scalar_one()
    return int(fresh)
