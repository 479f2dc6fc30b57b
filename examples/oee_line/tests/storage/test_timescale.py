"""The time series on TimescaleDB (PGlite with TimescaleDB 2.23, scripts/timescale): a hypertable and
continuous aggregates, giving the rollups and OEE figures the plain PostgreSQL path gives for the same samples."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from oee_line.oee import LossSettings, StateChange, machine_window
from oee_line.storage.store import Retention, Sample, TimeSeriesStore, timescale_version
from oee_line.storage.tables import ROLLUPS, telemetry
from oee_line.storage.timescale_server import TimescaleServer
from oee_line.storage.window import window_inputs
from sqlalchemy import Engine

from .conftest import migrated, registry, schema_engine
from .test_window import _history

pytestmark = pytest.mark.servers


def _rollups(engine: Engine) -> dict[str, dict[tuple[str, str, int], tuple[float, ...]]]:
    with engine.connect() as conn:
        return {r.name: {(row.machine_id, row.metric, int(row.bucket)): tuple(row[3:])
                         for row in conn.execute(sa.select(r.table))} for r in ROLLUPS}


def _objects(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        hyper = conn.execute(sa.text("SELECT hypertable_name FROM timescaledb_information.hypertables "
                                     "WHERE hypertable_schema = current_schema()")).scalars().all()
        caggs = conn.execute(sa.text("SELECT view_name FROM timescaledb_information.continuous_aggregates "
                                     "WHERE view_schema = current_schema() ORDER BY view_name")).scalars().all()
    return list(hyper), list(caggs)


def test_migration_creates_the_extension_a_hypertable_and_continuous_aggregates(tmp_path: Path) -> None:
    # a server of its own, without the extension the shared one is given first thing
    with TimescaleServer(base_dir=tmp_path) as server:
        for ts_engine in schema_engine(server, "migration"):
            _migrate_down_and_up(ts_engine)


def _migrate_down_and_up(ts_engine: Engine) -> None:
    with ts_engine.connect() as conn:
        assert timescale_version(conn) is None
    migrated(ts_engine)
    with ts_engine.connect() as conn:
        assert (timescale_version(conn) or "").startswith("2.")
    assert _objects(ts_engine) == (["telemetry"], ["telemetry_1h", "telemetry_1m", "telemetry_5m"])
    assert TimeSeriesStore(ts_engine).on_timescale()
    with ts_engine.begin() as conn:  # back to nothing, then up again
        cfg = registry().config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "oee_line@base")
        gone = conn.execute(sa.text("SELECT to_regclass('telemetry'), to_regclass('telemetry_1m')")).one()
        assert tuple(gone) == (None, None)
    migrated(ts_engine)
    assert _objects(ts_engine) == (["telemetry"], ["telemetry_1h", "telemetry_1m", "telemetry_5m"])


def test_rollups_equal_the_plain_postgresql_paths(ts_series_db: Engine, pg_series_db: Engine) -> None:
    rng = random.Random(3)
    samples = [Sample(f"M{m}", metric, t * 7.3 + m, round(rng.uniform(10, 90), 3))
               for m in range(2) for metric in ("Temp", "Speed") for t in range(1500)]
    batches = [samples[i:i + 97] for i in range(0, len(samples), 97)]
    rng.shuffle(batches)
    stores = [TimeSeriesStore(ts_series_db), TimeSeriesStore(pg_series_db)]
    assert not stores[1].on_timescale()
    for i, batch in enumerate(batches):
        assert [s.write(batch) for s in stores] == [len(batch)] * 2
        if i % 10 == 3:  # materialized now and then: later batches land in buckets already materialized
            stores[0].refresh_percentiles()
    assert [s.write(batches[0] + batches[1]) for s in stores] == [0, 0]  # a replay stores nothing twice
    assert stores[0].refresh_percentiles() == 3
    stores[1].refresh_percentiles()
    got, want = _rollups(ts_series_db), _rollups(pg_series_db)
    for level in want:
        assert got[level].keys() == want[level].keys()
        for key, row in want[level].items():
            assert got[level][key][0] == row[0] and got[level][key][2:4] == row[2:4], (level, key)
            assert got[level][key] == pytest.approx(row), (level, key)  # sum and percentiles: float order
    with ts_series_db.connect() as conn:  # and materialized, not only computed from the raw rows
        materialized = conn.execute(sa.text(
            "SELECT count(*) FROM telemetry_5m WHERE bucket < _timescaledb_functions.cagg_watermark("
            "(SELECT mat_hypertable_id FROM _timescaledb_catalog.continuous_agg WHERE user_view_name = 'telemetry_5m'"
            " AND user_view_schema = current_schema()))")).scalar()
    assert materialized == len(want["5m"])


def test_oee_from_stored_data_equals_the_plain_postgresql_paths(ts_series_db: Engine, pg_series_db: Engine) -> None:
    rng = random.Random(5)
    stores = [TimeSeriesStore(ts_series_db), TimeSeriesStore(pg_series_db)]
    for m in ("A", "B"):
        samples, states = _history(rng, m, 20_000.0)
        for store in stores:
            store.write(samples, states)
    for store in stores:
        store.write([Sample("B", "IdealCycleTime", 10.0, 3.5)])
    settings = LossSettings(small_stop_threshold=120, startup_window=600)
    for t0, t1 in [(0.0, 20_000.0), (5_000.0, 9_000.0)]:
        got, want = (window_inputs(s, ["A", "B", "C"], t0, t1, 2.0) for s in stores)
        assert got == want
        for m in ("A", "B"):
            assert stores[0].counters(m, t0, t1) == stores[1].counters(m, t0, t1)
            figures = [machine_window(s.states(m, t0, t1), s.counters(m, t0, t1), 2.0, t0, t1, settings=settings)
                       for s in stores]
            assert figures[0] == figures[1]
            assert figures[0].figures.total > 0


def test_retention_drops_whole_chunks_and_keeps_the_rollups(ts_series_db: Engine) -> None:
    store = TimeSeriesStore(ts_series_db)
    day = 86_400.0
    store.write([Sample("M1", "Temp", t * 3600.0, float(t)) for t in range(24 * 10)],
                [("M1", StateChange(0.0, "running")), ("M1", StateChange(day, "down")),
                 ("M1", StateChange(9 * day, "running"))])
    # telemetry and 1 min chunks are 1 day, 1 h chunks 28 days: 9 days of 1 h rollups drop nothing
    deleted = store.apply_retention(10 * day, Retention(telemetry_days=2, rollup_1m_days=5, rollup_5m_days=0,
                                                        rollup_1h_days=9, events_days=3))
    assert deleted == {"telemetry": 8 * 24, "telemetry_1m": 5 * 24, "telemetry_1h": 0, "events": 1}
    with ts_series_db.connect() as conn:
        assert conn.execute(sa.select(sa.func.min(telemetry.c.time))).scalar() == 8 * day
        hours = conn.execute(sa.text("SELECT count(*), min(bucket) FROM telemetry_1h")).one()
        assert tuple(hours) == (24 * 10, 0)  # the rollups of dropped samples stay
    store.write([Sample("M1", "Temp", 10 * day + 5, 1.0)])
    store.refresh_percentiles()  # refreshing after the drop does not empty the rollups of dropped samples
    with ts_series_db.connect() as conn:
        assert tuple(conn.execute(sa.text("SELECT count(*), min(bucket) FROM telemetry_1h")).one()) == (24 * 10 + 1, 0)
        assert conn.execute(sa.text("SELECT min(bucket) FROM telemetry_1m")).scalar() == 5 * day


def test_without_node_the_server_skips_naming_it_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import oee_line.storage.timescale_server as module

    monkeypatch.setattr(module, "find_binary", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'node' not found"):
        TimescaleServer()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        TimescaleServer()
