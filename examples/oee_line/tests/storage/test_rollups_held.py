"""A transaction's rollups held (TimeSeriesStore(hold_rollups=True)) and upserted once before it commits: the
same rows as a commit per write, nothing written before the flush, nothing of a rolled-back transaction."""

from __future__ import annotations

import random
from pathlib import Path

import sqlalchemy as sa
from oee_line.storage.store import Sample, TimeSeriesStore
from oee_line.storage.tables import ROLLUPS
from sqlalchemy import Engine

from .conftest import migrated
from .test_store import _expected, _stored


def _samples(seed: int, n: int = 3000) -> list[Sample]:
    rng = random.Random(seed)  # integer values, as the OEE line's counters: their sums are exact
    return [Sample(f"M{m}", metric, 1_700_000_000 + t * 1.7, float(rng.randrange(1000)))
            for m in range(2) for metric in ("GoodCount", "StateCode") for t in range(n // 4)]


def _batches(samples: list[Sample], seed: int) -> list[list[Sample]]:
    rng = random.Random(seed)
    batches = [samples[i:i + 41] for i in range(0, len(samples), 41)]
    rng.shuffle(batches)
    return batches + batches[:7]  # and a replay: stored once, counted once


def _rollup_rows(conn: sa.Connection) -> int:
    return sum(int(conn.execute(sa.select(sa.func.count()).select_from(r.table)).scalar() or 0) for r in ROLLUPS)


def test_one_flush_gives_the_rows_of_a_commit_per_write(tmp_path: Path) -> None:
    samples = _samples(1)
    held_db, each_db = migrated(f"sqlite:///{tmp_path}/held.db"), migrated(f"sqlite:///{tmp_path}/each.db")
    held = TimeSeriesStore(held_db, hold_rollups=True)
    with held_db.begin() as conn:
        new = sum(held.write_in(conn, batch) for batch in _batches(samples, 2))
        assert _rollup_rows(conn) == 0 and held.held is not None  # held, not written
        buckets = len(held.held)
        assert held.flush_rollups(conn) == buckets == sum(len(v) for v in _expected(samples).values())
    each = TimeSeriesStore(each_db)
    assert sum(each.write(batch) for batch in _batches(samples, 2)) == new == len(samples)
    assert _stored(held_db) == _stored(each_db) == _expected(samples)
    with held_db.begin() as conn:
        assert held.flush_rollups(conn) == 0  # forgotten once written


def test_a_rolled_back_transaction_leaves_nothing_held(tmp_path: Path) -> None:
    first, second = _samples(3), _samples(4)
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    store = TimeSeriesStore(engine, hold_rollups=True)
    with engine.connect() as conn:
        conn.begin()
        store.write_in(conn, first)
        conn.rollback()  # as a CommitGroup's failing write: its samples and their rollups gone
        with conn.begin():
            store.write_in(conn, second[:1000])
            store.write_in(conn, second)
            store.flush_rollups(conn)
    assert _stored(engine) == _expected(second)


def test_write_flushes_its_own_transaction(series_db: Engine) -> None:
    samples = _samples(5)
    store = TimeSeriesStore(series_db, hold_rollups=True)  # on PostgreSQL nothing is held: one statement
    for batch in _batches(samples, 6):
        store.write(batch)
    assert _stored(series_db) == _expected(samples)
