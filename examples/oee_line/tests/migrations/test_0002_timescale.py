"""Migration oee_line_0002: a database migrated to oee_line_0001 (plain tables) on a TimescaleDB server becomes a
hypertable with continuous aggregates on upgrade, every row kept (rollups of samples retention removed in an
archive table), and goes back to plain tables with every row on downgrade."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from oee_line.oee import StateChange
from oee_line.storage.store import Retention, Sample, TimeSeriesStore
from oee_line.storage.tables import ROLLUPS
from oee_line.storage.timescale import is_hypertable
from sqlalchemy import Engine

from ..storage.conftest import migrated, registry

pytestmark = pytest.mark.servers

DAY = 86_400.0
Rows = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]


def _alembic(engine: Engine, how: str, target: str) -> None:
    with engine.begin() as conn:
        cfg = registry().config()
        cfg.attributes["connection"] = conn
        getattr(command, how)(cfg, target)


def _rows(engine: Engine, *, archives: bool = False) -> Rows:
    """Every table's rows by key; with ``archives``, a level's archived buckets counted as its own."""
    out: Rows = {}
    with engine.connect() as conn:
        out["telemetry"] = {tuple(r[:3]): tuple(r[3:]) for r in conn.execute(sa.text(
            "SELECT machine_id, metric, time, value, quality FROM telemetry"))}
        out["events"] = {tuple(r[:3]): tuple(r[3:]) for r in conn.execute(sa.text(
            "SELECT machine_id, event_type, ts_start, ts_end, duration FROM events"))}
        for r in ROLLUPS:
            tables = [r.table.name] + ([f"{r.table.name}_archive"] if archives else [])
            out[r.name] = {}
            for table in tables:
                if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
                    continue
                ranks = ", p50, p95" if r.percentiles else ""
                for row in conn.execute(sa.text(f"SELECT machine_id, metric, bucket, count, sum, min, max{ranks} "
                                                f"FROM {table}")):
                    key = tuple(row[:3])
                    assert key not in out[r.name], (table, key)  # archived and aggregated never both
                    out[r.name][key] = tuple(row[3:])
    return out


def _equal(got: Rows, want: Rows) -> None:
    for table, rows in want.items():
        assert got[table].keys() == rows.keys(), table
        for key, row in rows.items():
            assert got[table][key] == pytest.approx(row), (table, key)  # sums and percentiles: float order


def test_a_database_at_0001_becomes_a_hypertable_on_upgrade_with_every_row(ts_engine: Engine) -> None:
    _alembic(ts_engine, "upgrade", "oee_line_0001")
    with ts_engine.connect() as conn:
        assert not is_hypertable(conn)
    rng = random.Random(7)
    store = TimeSeriesStore(ts_engine)
    samples = [Sample(m, metric, t * 293.0 + rng.random(), round(rng.uniform(0, 100), 2))
               for m in ("M1", "M2") for metric in ("Temp", "GoodCount") for t in range(int(3 * DAY / 293))]
    for i in range(0, len(samples), 1_000):
        store.write(samples[i:i + 1_000], [("M1", StateChange(i * 150.0, rng.choice(["running", "down"])))])
    store.refresh_percentiles(limit=100_000)
    # plain retention: samples of the first two days deleted, the rollups kept (they are kept longer)
    store.apply_retention(3 * DAY, Retention(telemetry_days=1, rollup_1m_days=0, rollup_5m_days=0,
                                             rollup_1h_days=0, events_days=0))
    before = _rows(ts_engine)
    assert min(t for _, _, t in before["telemetry"]) >= 2 * DAY
    assert min(b for _, _, b in before["1h"]) == 0

    migrated(ts_engine)  # to head: oee_line_0002
    with ts_engine.connect() as conn:
        assert is_hypertable(conn)
        assert conn.execute(sa.text("SELECT count(*) FROM telemetry WHERE sec <> floor(time)")).scalar() == 0
        chunks = conn.execute(sa.text(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() "
            "AND hypertable_name = 'telemetry'")).scalar()
    assert chunks == 1  # the one day of samples left, in a 1-day chunk
    store = TimeSeriesStore(ts_engine)
    assert store.on_timescale()
    _equal(_rows(ts_engine, archives=True), before)  # real-time aggregates, nothing materialized yet
    assert store.refresh_percentiles() == 3
    after = _rows(ts_engine, archives=True)
    _equal(after, before)
    assert min(b for _, _, b in _rows(ts_engine)["1h"]) == 2 * DAY  # the rest is in telemetry_1h_archive

    # a late sample in an archived hour and a new one go on through the hypertable
    assert store.write([Sample("M1", "Temp", 3600.5, 1.0), Sample("M1", "Temp", 3 * DAY + 1, 2.0)]) == 2
    store.refresh_percentiles()
    _alembic(ts_engine, "downgrade", "oee_line_0001")
    with ts_engine.connect() as conn:
        assert not is_hypertable(conn)
        assert conn.execute(sa.text("SELECT to_regclass('telemetry_1h_archive')")).scalar() is None
    plain = _rows(ts_engine)
    late = {("M1", "Temp", 3600.5), ("M1", "Temp", 3 * DAY + 1)}
    assert plain["telemetry"].keys() == before["telemetry"].keys() | late
    hour = ("M1", "Temp", 3600)
    assert plain["1h"][hour][:4] == pytest.approx((before["1h"][hour][0] + 1, before["1h"][hour][1] + 1.0, 1.0,
                                                   before["1h"][hour][3]))  # merged, percentiles due again
    assert plain["1h"][hour][4:] == (None, None)
    assert plain["1h"][("M1", "Temp", 3 * DAY)][:4] == (1, 2.0, 2.0, 2.0)
    store = TimeSeriesStore(ts_engine)
    assert store.write([Sample("M2", "Temp", 3 * DAY + 2, 3.0)]) == 1  # the plain path again
    migrated(ts_engine)  # and up once more
    with ts_engine.connect() as conn:
        assert is_hypertable(conn)
