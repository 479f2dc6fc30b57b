"""State changes on SQLite as DBAPI statements (oee_line.storage.batch_sqlite.add_states_sqlite) store the rows the
Core statements (TimeSeriesStore._add_state) store: random batches of changes, late, repeated and out of order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from oee_line.oee import StateChange
from oee_line.storage.store import TimeSeriesStore
from oee_line.storage.tables import events

from .conftest import migrated

STATES = ["running", "idle", "down", "setup"]


def _events(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:  # the payload as stored text: the same JSON, byte for byte
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT machine_id, event_type, ts_start, ts_end, duration, payload FROM events "
            "ORDER BY machine_id, ts_start, event_type"))]


class CoreStore(TimeSeriesStore):
    """The Core path for SQLite too: each change through ``_add_state``, as before add_states_sqlite."""

    def write_in(self, conn, samples, states=()):  # type: ignore[no-untyped-def,override]
        for machine_id, change in sorted(states, key=lambda s: (s[0], s[1].ts)):
            self._add_state(conn, machine_id, change)
        return 0


@pytest.mark.parametrize("seed", range(6))
def test_dbapi_states_store_what_core_stores(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    changes = [(rng.choice(["M1", "M2"]), StateChange(float(rng.randrange(0, 2_000, 5)) + rng.random(),
                                                      rng.choice(STATES), rng.choice([0, 101, 202])))
               for _ in range(120)]
    changes += rng.sample(changes, 20)  # repeated (a birth, a replay)
    rng.shuffle(changes)
    dbapi, core = migrated(f"sqlite:///{tmp_path}/a.db"), migrated(f"sqlite:///{tmp_path}/b.db")
    try:
        new, old = TimeSeriesStore(dbapi), CoreStore(core)
        for i in range(0, len(changes), 7):  # batches of 7, in arrival order
            new.write([], changes[i:i + 7])
            old.write([], changes[i:i + 7])
        rows = _events(dbapi)
        assert rows == _events(core) and len(rows) > 50
        assert any(r[3] is not None for r in rows)
        with dbapi.connect() as conn:  # read back through the table's JSON type
            assert {p["fault_code"] for p in conn.execute(sa.select(events.c.payload)).scalars()} <= {0, 101, 202}
    finally:
        dbapi.dispose()
        core.dispose()
