"""The ERP link's state tables: created by the plant's Alembic branch, used by ``LinkState``."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from industry40.components.erp_state import ASKS, REQUESTS, Ask, LinkState, Tracked

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade

MIGRATIONS = Path(__file__).resolve().parents[1] / "src" / "industry40" / "migrations"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path}/i40.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    registry = MigrationRegistry(include_core=False)
    registry.add("industry40", MIGRATIONS, plugin="forge-example-industry40")
    engine = create_engine_from_url(url)
    upgrade(engine, registry)
    return engine


def test_the_migration_creates_the_tables_link_state_declares(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    for table in (REQUESTS, ASKS):
        migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(migrated) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert migrated[column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in table.primary_key]


def test_requests_and_asks_survive_a_new_link_state(engine: sa.Engine) -> None:
    state = LinkState(engine)
    request = {"id": "R-1", "material_produced": [{"quantity": 12.0, "unit": "kg", "material_definition_id": "M"}]}
    tracked = Tracked.of("S-1/R-1", request, at=5.0)
    assert state.add_request(tracked)
    assert not state.add_request(tracked)  # the inbox published it again: recorded once
    tracked.order_id, tracked.status, tracked.completed_at = "o-1", "completed", 9.0
    state.save(tracked)
    state.put_ask("create:S-1/R-1", Ask({"action": "create"}, 6.0))
    state.put_ask("get:S-1/R-1", Ask({"action": "get"}, 7.0, action={"verb": "Get"}))
    state.drop_ask("create:S-1/R-1")

    requests, asks = LinkState(engine).load()  # what a restarted link reads
    again = requests["S-1/R-1"]
    assert (again.order_id, again.status, again.completed_at, again.exported) == ("o-1", "completed", 9.0, False)
    assert (again.quantity, again.unit, again.material) == (12.0, "kg", "M")
    assert list(asks) == ["get:S-1/R-1"] and asks["get:S-1/R-1"].action == {"verb": "Get"}


def test_writes_on_the_driver_read_back_as_sqlalchemys_statements_wrote_them(engine: sa.Engine) -> None:
    """The writes run on the driver's cursor (statements compiled once): a saved request and a refreshed ask
    read back as SQLAlchemy's own insert/update of the same values writes them (booleans, NULLs, floats)."""
    state = LinkState(engine)
    request = {"id": "R-2", "material_produced": [{"quantity": 3.5}]}
    tracked = Tracked.of("S-2/R-2", request, at=1_800_000_000.25)
    assert state.add_request(tracked)
    tracked.order_id, tracked.status, tracked.detail, tracked.exported = "o-2", "completed", "done", True
    state.save(tracked)
    state.put_ask("get:S-2/R-2", Ask({"action": "get"}, 7.0, action={"verb": "Get"}))
    state.put_ask("get:S-2/R-2", Ask({"action": "get", "n": 2}, 8.5))  # refreshed: one row, the new one

    def rows() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with engine.connect() as conn:
            return ([tuple(r) for r in conn.execute(sa.select(REQUESTS))],
                    [tuple(r) for r in conn.execute(sa.select(ASKS))])

    written = rows()
    with engine.begin() as conn:
        conn.execute(sa.delete(REQUESTS))
        conn.execute(sa.delete(ASKS))
        conn.execute(REQUESTS.insert().values(
            key="S-2/R-2", request='{"id":"R-2","material_produced":[{"quantity":3.5}]}', order_id="o-2",
            status="completed", detail="done", requested_at=1_800_000_000.25, completed_at=None, exported=True))
        conn.execute(ASKS.insert().values(request_id="get:S-2/R-2", body='{"action":"get","n":2}', action=None,
                                          asked_at=8.5))
    assert written == rows()
    assert written[0][0][-1] is True and written[1][0][2] is None
