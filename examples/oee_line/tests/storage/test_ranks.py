"""bucket_percentiles: the database's ranks give the Python path's p50/p95, to the float."""

from __future__ import annotations

import random

from oee_line.storage.ranks import bucket_percentiles
from oee_line.storage.store import Sample, TimeSeriesStore, percentile
from sqlalchemy import Engine


def test_ranks_equal_the_python_percentiles(series_db: Engine) -> None:
    rng = random.Random(11)
    store = TimeSeriesStore(series_db)
    sizes = {"one": 1, "two": 2, "three": 3, "ties": 40, "many": 997}
    for metric, n in sizes.items():
        values = [float(rng.randint(0, 5)) if metric == "ties" else rng.uniform(-50, 50) for _ in range(n)]
        store.write([Sample("M1", metric, 100.0 + i * 0.5, v) for i, v in enumerate(values)])
        store.write([Sample("M1", metric, 99.0, 1e9), Sample("M2", metric, 101.0, -1e9)])  # outside / not M1
        with series_db.connect() as conn:
            got = bucket_percentiles(conn, "M1", metric, 100.0, 100.0 + n * 0.5)
        assert got == (percentile(values, 0.5), percentile(values, 0.95)), metric
    with series_db.connect() as conn:
        assert bucket_percentiles(conn, "M1", "many", 0.0, 50.0) is None  # no sample in the range
