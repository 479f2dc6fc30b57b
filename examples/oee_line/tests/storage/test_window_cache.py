"""CounterCache: the shift so far reduced incrementally on SQLite gives the full reduction's deltas, also when
samples arrive late (before what it kept), arrive twice, or are deleted (retention, clear)."""

from __future__ import annotations

import random
from pathlib import Path

from oee_line.storage.store import Sample, TimeSeriesStore
from oee_line.storage.window_cache import CounterCache
from oee_line.storage.window_sqlite import sqlite_counter_deltas

from .conftest import migrated
from .test_window import _history


def test_incremental_reduction_equals_the_full_one(tmp_path: Path) -> None:
    rng = random.Random(11)
    store = TimeSeriesStore(migrated(f"sqlite:///{tmp_path}/oee.db"))
    history = {m: _history(rng, m, 30_000.0)[0] for m in ("A", "B")}
    cache = CounterCache(settle=600.0)
    written = dict.fromkeys(history, 0)
    late: list[Sample] = []

    def check(t0: float, now: float) -> None:
        with store.engine.connect() as conn:
            for m in history:
                assert cache.deltas(conn, m, t0, now) == sqlite_counter_deltas(conn, m, t0, now), (m, t0, now)

    for now in range(900, 30_001, 900):  # as the OEE component: every 15 min, the shift (8 h) so far
        for m, samples in history.items():
            due = [s for s in samples[written[m]:] if s.time < now]
            written[m] += len(due)
            held = [s for s in due if rng.random() < 0.05]  # these arrive later (a replay after an outage)
            store.write([s for s in due if s not in held])
            late += held
        if now % 4500 == 0 and late:
            store.write(late + late[:3])  # late, and some twice
            late = []
        check(now // 28_800 * 28_800.0, float(now))
    assert cache.stats["kept"] > 0 and cache.stats["full"] > 3  # both paths ran: kept, and late samples seen
    assert any(e.reset for m in history for e in sqlite_counter_deltas(
        store.engine.connect(), m, 0.0, 30_000.0).events)

    # the baseline's rows deleted (retention takes the oldest first): reduced in full again, not from what was kept
    t0, now = 28_800.0, 30_000.0
    check(t0, now)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM telemetry WHERE time < 28800")
    full = cache.stats["full"]
    check(t0, now)
    assert cache.stats["full"] == full + 2
    store.clear()  # everything gone, then the same times written again (new rowids from 1 up)
    store.write(history["A"][:5])
    check(t0, now)
