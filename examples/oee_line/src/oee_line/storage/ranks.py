"""A rollup bucket's p50/p95 ranked by the database, only the ranks' values shipped to Python.

``TimeSeriesStore.refresh_percentiles`` recomputes a dirty bucket's percentiles from its raw samples. It
read every sample of the bucket into Python and sorted it there: an open 1 h bucket, touched by every
batch, was read whole at every refresh (the OEE line's simulated day: the hour so far, 18 metrics, every
refresh). Here the database sorts the bucket's values (an index range read, ``row_number`` over the value)
and returns just the rows at the ranks :func:`~oee_line.storage.store.percentile` interpolates between,
so the figures are the same floats as the Python path's (linear interpolation between closest ranks, as
PostgreSQL's ``percentile_cont``). Works on SQLite (3.25+) and PostgreSQL alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from oee_line.storage.tables import ROLLUPS

__all__ = ["QUANTILES", "SET_RANKS", "bucket_percentiles"]

QUANTILES = (0.5, 0.95)

_RANKED = sa.text("""
SELECT i, value, n FROM (
    SELECT value, row_number() OVER (ORDER BY value) - 1 AS i, count(*) OVER () AS n
    FROM telemetry WHERE machine_id = :m AND metric = :k AND time >= :t0 AND time < :t1
) ranked
WHERE i IN (CAST(floor((n - 1) * 0.5) AS INTEGER), CAST(floor((n - 1) * 0.5) AS INTEGER) + 1,
            CAST(floor((n - 1) * 0.95) AS INTEGER), CAST(floor((n - 1) * 0.95) AS INTEGER) + 1)
""")

#: Per percentile level, the UPDATE that stores a bucket's ranks (executemany: one call per refresh and level).
SET_RANKS = {r.name: sa.text(f"UPDATE {r.table.name} SET p50 = :p50, p95 = :p95 "
                             "WHERE machine_id = :m AND metric = :k AND bucket = :b") for r in ROLLUPS if r.percentiles}


def bucket_percentiles(conn: Connection, machine_id: str, metric: str, t0: float, t1: float
                       ) -> tuple[float, float] | None:
    """(p50, p95) of ``machine_id``'s ``metric`` samples in ``[t0, t1)``; None when it has none."""
    at: dict[int, float] = {}
    n = 0
    for i, value, count in conn.execute(_RANKED, {"m": machine_id, "k": metric, "t0": t0, "t1": t1}):
        at[int(i)] = float(value)
        n = int(count)
    if not n:
        return None

    def rank(q: float) -> float:  # oee_line.storage.store.percentile's arithmetic on the two ranks
        pos = (n - 1) * q
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return at[lo] + (at[hi] - at[lo]) * (pos - lo)

    p50, p95 = (rank(q) for q in QUANTILES)
    return p50, p95
