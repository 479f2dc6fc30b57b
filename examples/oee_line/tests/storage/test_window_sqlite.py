"""A window's states and ideal cycle time on SQLite's cursor (oee_line.storage.window_sqlite) are what
TimeSeriesStore.states and ideal_cycle_time read through Core, edge cases included."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from oee_line.oee import StateChange
from oee_line.storage.store import Sample, TimeSeriesStore
from oee_line.storage.window_sqlite import sqlite_ideal_cycle_time, sqlite_states

from .conftest import migrated


def test_states_and_cycle_time_read_on_the_cursor_are_what_core_reads(tmp_path: Path) -> None:
    engine = migrated(f"sqlite:///{tmp_path}/oee.db")
    try:
        store = TimeSeriesStore(engine)
        store.write([Sample("M1", "IdealCycleTime", 50.0, 2.5), Sample("M1", "IdealCycleTime", 10.0, 9.0)],
                    [("M1", StateChange(5.0, "running")), ("M1", StateChange(20.0, "down", 7)),
                     ("M1", StateChange(30.0, "idle")), ("M2", StateChange(1.0, "setup"))])
        with engine.begin() as conn:  # payloads the historian never writes: no fault code, a JSON null
            for ts, kind, payload in [(40.0, "idle", "'{}'"), (45.0, "setup", "'null'")]:
                conn.execute(sa.text(f"INSERT INTO events (machine_id, event_type, ts_start, payload) "
                                     f"VALUES ('M1', '{kind}', {ts}, {payload})"))
        with engine.connect() as conn:
            for machine in ("M1", "M2", "M3"):
                for t0, t1 in [(0.0, 100.0), (22.0, 100.0), (20.0, 30.0), (50.0, 60.0), (0.0, 0.5)]:
                    assert sqlite_states(conn, machine, t0, t1) == store.states(machine, t0, t1), (machine, t0, t1)
                assert sqlite_ideal_cycle_time(conn, machine, 4.0) == store.ideal_cycle_time(machine, 4.0)
            assert sqlite_states(conn, "M1", 22.0, 41.0) == [
                StateChange(20.0, "down", 7), StateChange(30.0, "idle", 0), StateChange(40.0, "idle", 0)]
            assert sqlite_ideal_cycle_time(conn, "M1", 4.0) == 2.5  # the newest by time, not the last written
            assert sqlite_ideal_cycle_time(conn, "M3", 4.0) == 4.0
    finally:
        engine.dispose()
