"""Time-series storage on SQLite and a real PostgreSQL: samples once, rollups incremental, events, retention."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import sqlalchemy as sa
from forge_opcua.settings import MachineTiming
from forge_opcua.simulator.model import Machine
from oee_line.oee import StateChange, machine_window
from oee_line.storage.store import GOOD, TOTAL, Retention, Sample, TimeSeriesStore, percentile, timescale_version
from oee_line.storage.tables import ROLLUPS, events, telemetry
from sqlalchemy import Engine


def _expected(samples: list[Sample]) -> dict[str, dict[tuple[str, str, int], tuple[int, float, float, float]]]:
    out: dict[str, dict[tuple[str, str, int], tuple[int, float, float, float]]] = {}
    for rollup in ROLLUPS:
        groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for s in samples:
            groups[(s.machine_id, s.metric, rollup.bucket_of(s.time))].append(s.value)
        out[rollup.name] = {k: (len(v), sum(v), min(v), max(v)) for k, v in groups.items()}
    return out


def _stored(engine: Engine) -> dict[str, dict[tuple[str, str, int], tuple[int, float, float, float]]]:
    with engine.connect() as conn:
        return {r.name: {(row.machine_id, row.metric, int(row.bucket)): (row.count, row.sum, row.min, row.max)
                         for row in conn.execute(sa.select(r.table))} for r in ROLLUPS}


def test_batches_replayed_and_shuffled_give_the_rollups_of_a_full_rescan(series_db: Engine) -> None:
    rng = random.Random(3)
    samples = [Sample(f"M{m}", "Temp", t * 7.3, round(rng.uniform(10, 90), 3)) for m in range(2) for t in range(2000)]
    store = TimeSeriesStore(series_db)
    batches = [samples[i:i + 97] for i in range(0, len(samples), 97)]
    rng.shuffle(batches)
    new = sum(store.write(b) for b in batches)
    new += sum(store.write(b) for b in batches[:5])  # a replay (Sparkplug historical) stores nothing twice
    assert new == len(samples)
    stored, want = _stored(series_db), _expected(samples)
    for level in want:
        assert stored[level].keys() == want[level].keys()
        for key, (count, total, low, high) in want[level].items():
            got = stored[level][key]
            assert got[0] == count and got[2] == low and got[3] == high
            assert got[1] == pytest.approx(total)


def test_a_batch_of_many_statements_adds_only_its_new_samples(series_db: Engine) -> None:
    # on SQLite a batch goes in INSERTs of at most forge_core.storage.driver_sql.MAX_ROWS (500) rows: one of
    # 1,000 with 300 already stored crosses a statement boundary
    samples = [Sample("M1", "Temp", t * 3.1, float(t % 17)) for t in range(1000)]
    store = TimeSeriesStore(series_db)
    assert store.write(samples[:300]) == 300
    assert store.write(list(reversed(samples))) == 700
    assert _stored(series_db) == _expected(samples)


def test_a_batch_of_one_statement_partly_stored_adds_only_its_new_samples(series_db: Engine) -> None:
    # on SQLite a batch of one statement inserts without RETURNING and reads its new rows back by rowid when
    # some were already there: every stored row, old and new, must be counted once in the rollups
    samples = [Sample("M1" if t % 3 else "M2", "Temp", t * 1.7, float(t % 23)) for t in range(200)]
    store = TimeSeriesStore(series_db)
    assert store.write(samples[150:160]) == 10
    assert store.write(samples[:40] + samples[90:100]) == 50
    batch = samples[:]
    random.Random(5).shuffle(batch)
    assert store.write(batch + batch[:7]) == 140  # duplicates within the batch too
    assert store.write(samples[195:]) == 0
    assert _stored(series_db) == _expected(samples)


def test_percentiles_are_recomputed_for_touched_buckets_only(series_db: Engine) -> None:
    store = TimeSeriesStore(series_db)
    store.write([Sample("M1", "Temp", float(t), float(t)) for t in range(7200)])
    assert store.refresh_percentiles() == 24 + 2  # 5 min buckets of two hours, and two 1 h buckets
    store.write([Sample("M1", "Temp", 7000.5, 1e6)])  # touches one 5 min and one 1 h bucket
    assert store.refresh_percentiles() == 2
    hour = ROLLUPS[2].table
    with series_db.connect() as conn:
        first = conn.execute(sa.select(hour.c.p50, hour.c.p95).where(hour.c.bucket == 0)).one()
    hour0 = [float(t) for t in range(3600)]
    assert first == (percentile(hour0, 0.5), percentile(hour0, 0.95))
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_state_changes_become_intervals_in_any_arrival_order(series_db: Engine) -> None:
    store = TimeSeriesStore(series_db)
    store.write([], [("M1", StateChange(0.0, "running")), ("M1", StateChange(300.0, "setup"))])
    store.write([], [("M1", StateChange(100.0, "down", 7))])  # late: between the two it knows
    with series_db.connect() as conn:
        rows = conn.execute(sa.select(events.c.event_type, events.c.ts_start, events.c.ts_end, events.c.duration,
                                      events.c.payload).order_by(events.c.ts_start)).all()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("running", 0.0, 100.0, 100.0), ("down", 100.0, 300.0, 200.0),
                                                        ("setup", 300.0, None, None)]
    assert rows[1].payload == {"fault_code": 7}
    assert store.states("M1", 150.0, 1000.0) == [StateChange(100.0, "down", 7), StateChange(300.0, "setup")]


def test_retention_deletes_what_is_older_than_each_tables_setting(series_db: Engine) -> None:
    store = TimeSeriesStore(series_db)
    day = 86_400.0
    store.write([Sample("M1", "Temp", t * 3600.0, 1.0) for t in range(24 * 10)],
                [("M1", StateChange(0.0, "running")), ("M1", StateChange(day, "down")),
                 ("M1", StateChange(9 * day, "running"))])
    deleted = store.apply_retention(10 * day, Retention(telemetry_days=2, rollup_1m_days=5, rollup_5m_days=0,
                                                        rollup_1h_days=9, events_days=3))
    assert deleted == {"telemetry": 8 * 24, "telemetry_1m": 5 * 24, "telemetry_1h": 24, "events": 1}
    with series_db.connect() as conn:
        assert conn.execute(sa.select(sa.func.min(telemetry.c.time))).scalar() == 8 * day


def test_oee_from_stored_data_equals_the_machines_ground_truth(series_db: Engine) -> None:
    # a simulated machine's four hours as the edge would report them (samples when they change), stored in
    # batches of about 10 s, then the OEE of each hour from the database against the model's own counts
    m = Machine("M1", MachineTiming(), 2.0, random.Random(11), 0.0)
    store = TimeSeriesStore(series_db)
    truth = []
    samples, states = [Sample("M1", GOOD, 0.0, 0), Sample("M1", TOTAL, 0.0, 0)], [("M1", StateChange(0.0, m.state))]
    t = 0.0
    for hour in range(4):
        before = dict(m.totals.seconds), m.total, m.good
        while t < (hour + 1) * 3600:
            t += 0.25
            state, total, good = m.state, m.total, m.good
            m.advance(t)
            if m.state != state:
                states.append(("M1", StateChange(m.state_since, m.state, m.fault_code)))
            if m.total != total:
                samples.append(Sample("M1", TOTAL, m.last_part_at, m.total))
            if m.good != good:
                samples.append(Sample("M1", GOOD, m.last_part_at, m.good))
            if t % 10 == 0:
                store.write(samples, states)
                samples, states = [], []
        truth.append((m.totals.seconds["running"] - before[0]["running"], m.total - before[1], m.good - before[2]))
    for hour, (run, total, good) in enumerate(truth):
        t0, t1 = hour * 3600.0, (hour + 1) * 3600.0
        w = machine_window(store.states("M1", t0, t1), store.counters("M1", t0, t1), 2.0, t0, t1)
        assert (w.figures.total, w.figures.good) == (total, good)
        assert w.figures.run_time == pytest.approx(run, abs=1e-6)


def test_timescale_is_detected_only_where_installed(series_db: Engine) -> None:
    with series_db.connect() as conn:
        assert timescale_version(conn) is None  # the test servers are plain SQLite and PostgreSQL


def test_a_sample_is_immutable_hashable_and_equal_by_its_fields() -> None:
    sample = Sample("M1", GOOD, 10.0, 3.0)
    assert sample.quality == "good" and sample == Sample("M1", GOOD, 10.0, 3.0, "good")
    assert len({sample, Sample("M1", GOOD, 10.0, 3.0)}) == 1
    with pytest.raises(AttributeError):
        sample.value = 4.0  # type: ignore[misc]
