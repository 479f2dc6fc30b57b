"""TimeSeriesStore.clear (the simulated run's reset_storage): samples, events and rollups emptied, on
SQLite, PostgreSQL and TimescaleDB (whose rollups are continuous aggregates, which refuse a DELETE)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from oee_line.oee import StateChange
from oee_line.storage.store import Sample, TimeSeriesStore
from oee_line.storage.tables import ROLLUPS, events, telemetry
from sqlalchemy import Engine


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (telemetry, events, *(r.table for r in ROLLUPS))}


def _fill(store: TimeSeriesStore) -> None:
    store.write([Sample("M1", "GoodCount", 10.0 + i * 30, float(i)) for i in range(300)],
                [("M1", StateChange(10.0, "running")), ("M1", StateChange(500.0, "down", 3))])
    store.refresh_percentiles()


def test_clear_empties_every_table(series_db: Engine) -> None:
    store = TimeSeriesStore(series_db)
    _fill(store)
    assert all(_counts(series_db).values())
    store.clear()
    assert set(_counts(series_db).values()) == {0}
    _fill(store)  # usable again: the same samples are new, the rollups count them once
    assert _counts(series_db)["telemetry_1h"] == 3


@pytest.mark.servers
def test_clear_on_timescale_empties_the_continuous_aggregates(ts_series_db: Engine) -> None:
    store = TimeSeriesStore(ts_series_db)
    _fill(store)
    assert all(_counts(ts_series_db).values())
    with pytest.raises(sa.exc.DBAPIError), ts_series_db.begin() as conn:  # why clear() does not DELETE them
        conn.execute(ROLLUPS[0].table.delete())
    store.clear()
    assert set(_counts(ts_series_db).values()) == {0}
    _fill(store)
    assert _counts(ts_series_db)["telemetry_1h"] == 3
