"""refresh_percentiles on SQLite (held sorted, read incrementally) stores the database ranking's p50/p95."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from oee_line.storage.ranks import bucket_percentiles
from oee_line.storage.store import Retention, Sample, TimeSeriesStore
from oee_line.storage.tables import ROLLUPS
from sqlalchemy import Engine

from .conftest import migrated


def _stored(engine: Engine) -> dict[tuple[str, str, str, int], tuple[float, float]]:
    """Every bucket's stored p50/p95 (a dirty one with no samples left stays NULL on either path)."""
    out = {}
    with engine.connect() as conn:
        for rollup in ROLLUPS:
            if rollup.percentiles:
                t = rollup.table.c
                for m, k, b, p50, p95 in conn.execute(sa.select(t.machine_id, t.metric, t.bucket, t.p50, t.p95)):
                    if p50 is not None:  # None: no samples left to rank (retention), as before
                        out[(rollup.name, m, k, int(b))] = (p50, p95)
    return out


def _ranked(engine: Engine) -> dict[tuple[str, str, str, int], tuple[float, float]]:
    """Every bucket ranked by the database (oee_line.storage.ranks), the path before the held lists."""
    out = {}
    with engine.connect() as conn:
        for rollup in ROLLUPS:
            if rollup.percentiles:
                t = rollup.table.c
                for m, k, b in conn.execute(sa.select(t.machine_id, t.metric, t.bucket)).all():
                    ranks = bucket_percentiles(conn, m, k, b, b + rollup.seconds)
                    if ranks is not None:
                        out[(rollup.name, m, k, int(b))] = ranks
    return out


@pytest.mark.parametrize("seed", range(6))
def test_incremental_refresh_equals_the_database_ranking(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    store = TimeSeriesStore(engine)
    t = 0.0
    for step in range(60):
        batch = []
        for _ in range(rng.randint(1, 40)):
            t += rng.uniform(0.1, 20.0)
            metric = rng.choice(["Temp", "Speed", "ties"])
            value = float(rng.randint(0, 3)) if metric == "ties" else rng.uniform(-100, 100)
            batch.append(Sample(rng.choice(["M1", "M2"]), metric, t, value))
        if step % 7 == 3:  # late samples (store and forward) into older, already ranked buckets
            batch += [Sample("M1", "Temp", rng.uniform(0, t), rng.uniform(-100, 100)) for _ in range(5)]
        if step % 5 == 2:  # a replay: nothing stored twice
            batch += batch[:3]
        store.write(batch)
        if rng.random() < 0.6:
            store.refresh_percentiles()
            assert _stored(engine) == _ranked(engine), step
        if step == 40:  # a retention sweep cuts the first hour in the middle: held lists must be reread
            store.apply_retention(1800.0 + 7 * 86_400, Retention())
            with engine.begin() as conn:  # every bucket dirty again (the first hour's would not be otherwise)
                for level in ("5m", "1h"):
                    conn.execute(sa.text(f"UPDATE telemetry_{level} SET p50 = NULL, p95 = NULL"))
            store.refresh_percentiles()
            assert _stored(engine) == _ranked(engine)
    store.refresh_percentiles()
    assert _stored(engine) == _ranked(engine)
    fresh = TimeSeriesStore(engine)  # a restart (after a kill): nothing held, each bucket read whole once
    store.write([Sample("M2", "Speed", t + 5.0, 1.0)])
    fresh.write([Sample("M2", "Speed", t + 6.0, 2.0)])
    fresh.refresh_percentiles()
    assert _stored(engine) == _ranked(engine)
    engine.dispose()


def test_a_held_bucket_that_no_longer_matches_is_read_again(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    store = TimeSeriesStore(engine)
    store.write([Sample("M1", "Temp", float(i), float(i)) for i in range(100)])
    store.refresh_percentiles()
    with engine.begin() as conn:  # another writer deletes samples behind the store's back, then adds one
        conn.execute(sa.text("DELETE FROM telemetry WHERE time < 50"))
        conn.execute(sa.text("UPDATE telemetry_1h SET count = 51, min = 50, p50 = NULL, p95 = NULL"))
        conn.execute(sa.text("UPDATE telemetry_5m SET count = 51, min = 50, p50 = NULL, p95 = NULL"))
        conn.execute(sa.text("INSERT INTO telemetry VALUES ('M1', 'Temp', 100.0, 100.0, 'good')"))
    store.refresh_percentiles()
    assert _stored(engine) == _ranked(engine)
    assert _stored(engine)[("1h", "M1", "Temp", 0)] == (75.0, 97.5)
    engine.dispose()


def bucket_ranks(values: list[int]) -> tuple[float, float]:
    """p50/p95 of ``values`` as oee_line.storage.store.percentile interpolates them."""
    ordered = sorted(float(v) for v in values)
    out = []
    for q in (0.5, 0.95):
        pos = (len(ordered) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        out.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    return out[0], out[1]


def test_a_retention_sweep_keeps_what_is_held_of_the_buckets_it_deleted_nothing_of(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    store = TimeSeriesStore(engine)
    day = 86_400.0
    store.write([Sample("M1", "Temp", 10 * day + i, float(i % 7)) for i in range(100)])  # the open hour
    store.write([Sample("M1", "Temp", float(i), float(i)) for i in range(10)])  # old samples, of bucket 0
    store.refresh_percentiles()
    store.apply_retention(10 * day + 100.0, Retention())  # the samples older than 7 days go: bucket 0's only
    held = {key[0]: key[3] for key in store._sorted._held}
    assert held == {"5m": 10 * day, "1h": 10 * day}, "the open buckets stay held, the old ones are dropped"
    store.write([Sample("M1", "Temp", 10 * day + 200.0, 500.0)])
    store.refresh_percentiles()  # the open hour's new sample read alone, the figures the database ranking's
    ranked = _ranked(engine)
    assert {key: ranks for key, ranks in _stored(engine).items() if key[3] >= 10 * day} == ranked  # bucket 0: none left
    assert ranked[("1h", "M1", "Temp", int(10 * day))] == bucket_ranks(list(range(7)) * 14 + [0, 1, 500])
    engine.dispose()


def test_a_5m_bucket_first_ranked_after_its_hour_reads_what_the_hours_read_missed(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    store = TimeSeriesStore(engine)
    store.write([Sample("M1", "Temp", float(t), float(t % 11)) for t in range(0, 600, 7)])  # two 5 min buckets
    store.refresh_percentiles(limit=1)  # the hour and the first 5 min bucket ranked, the second left dirty
    assert ("5m", "M1", "Temp", 300) not in _stored(engine)
    store.write([Sample("M1", "Temp", 599.5, 42.0)])
    store.refresh_percentiles()  # the hour's read has the new sample only: the second bucket is read whole
    assert _stored(engine) == _ranked(engine)
    assert _stored(engine)[("5m", "M1", "Temp", 300)] == bucket_ranks([t % 11 for t in range(301, 600, 7)] + [42])
    engine.dispose()
