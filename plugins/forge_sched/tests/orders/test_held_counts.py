"""sched_factory_held (migration sched_0003): each factory's held-order count, kept by the database
in the transaction of every order change, equals counting the held orders, whoever changed them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from sqlalchemy import Engine

from forge_sched.orders.changes import cancel_order
from forge_sched.orders.moves import HELD_TABLE
from forge_sched.orders.service import NewOrder

from .conftest import MIGRATIONS

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)
COUNT = sa.text("SELECT factory_id, count(*) FROM orders WHERE factory_id IS NOT NULL "
                "AND status IN ('assigned', 'in_progress') GROUP BY factory_id")


def run(coro):
    return asyncio.run(coro)


def kept(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {f: n for f, n in conn.execute(sa.text(f"SELECT factory_id, held FROM {HELD_TABLE}")) if n}


def counted(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {f: n for f, n in conn.execute(COUNT)}


def test_the_kept_count_follows_every_kind_of_order_change(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 3, "f2": 3, "f3": 3}))
    ids = [run(s.create_order(NewOrder("p", 1, DEADLINE)))[0]["id"] for _ in range(7)]
    assert kept(engine) == counted(engine) == {"f1": 3, "f2": 2, "f3": 2}, "placed: most free capacity, ties by id"
    holder = _holders(engine)
    started = ids[0]
    assert run(s.progress(started, holder[started], 0.5))  # assigned -> in_progress: still held by the same one
    assert kept(engine) == counted(engine)
    assert run(s.complete(started, holder[started])) == "completed"
    assert kept(engine) == counted(engine) and sum(kept(engine).values()) == 6
    assert run(cancel_order(s, order_id=ids[1])).code == "ok"
    assert kept(engine) == counted(engine) and sum(kept(engine).values()) == 5
    assert run(s.report_status("f1", "DOWN", "gone", 1, "mms")).accepted  # its orders move or go pending
    assert "f1" not in kept(engine) and kept(engine) == counted(engine)
    assert run(s.report_status("f1", "UP", "back", 1, "mms")).accepted  # rebalanced onto it again
    assert kept(engine) == counted(engine)
    assert run(s.reschedule_orders("f2", "f1")) >= 0
    assert kept(engine) == counted(engine)


def test_changes_made_beside_the_service_are_counted_too(engine, make_service):
    """A second replica, an operator's SQL or a restore: the count is the database's, not a process's."""
    s = make_service()
    run(s.configure_factories({"f1": 5, "f2": 5}))
    oid = run(s.create_order(NewOrder("p", 1, DEADLINE)))[0]["id"]
    with engine.begin() as conn:
        holder = conn.execute(sa.text("SELECT factory_id FROM orders WHERE id = :o"), {"o": oid}).scalar_one()
        other = "f2" if holder == "f1" else "f1"
        conn.execute(sa.text("UPDATE orders SET factory_id = :f WHERE id = :o"), {"f": other, "o": oid})
    assert kept(engine) == counted(engine) == {other: 1}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM factory_assignments WHERE order_id = :o"), {"o": oid})
        conn.execute(sa.text("DELETE FROM orders WHERE id = :o"), {"o": oid})
    assert kept(engine) == counted(engine) == {}


def test_a_rolled_back_placement_leaves_the_count_as_it_was(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 5}))
    run(s.create_order(NewOrder("p", 1, DEADLINE)))
    with engine.connect() as conn, conn.begin() as tx:
        conn.execute(sa.text("UPDATE orders SET status = 'pending', factory_id = NULL"))
        assert dict(conn.execute(sa.text(f"SELECT factory_id, held FROM {HELD_TABLE}")).all()) == {"f1": 0}
        tx.rollback()
    assert kept(engine) == counted(engine) == {"f1": 1}


def test_the_loads_a_placement_reads_come_from_the_kept_count(engine, make_service):
    s = make_service()
    run(s.configure_factories({"f1": 2, "f2": 2}))
    assert kept(engine) == {}
    with engine.begin() as conn:  # a count the orders do not show: placements must believe it
        conn.execute(sa.text(f"INSERT INTO {HELD_TABLE} (factory_id, held) VALUES ('f1', 2)"))
    placed = [run(s.create_order(NewOrder("p", 1, DEADLINE)))[0]["factory_id"] for _ in range(3)]
    assert placed == ["f2", "f2", None], "f1 counted full, f2 filled, then nothing free"


def _holders(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {o: f for o, f in conn.execute(sa.text("SELECT id, factory_id FROM orders WHERE factory_id IS NOT NULL"))}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def test_the_migration_counts_the_orders_already_held(backend, request, tmp_path):
    """A database that held orders before sched_0003: the table starts from them, then follows changes."""
    url: str = f"sqlite:///{tmp_path}/before.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine_from_url(url)
    registry = MigrationRegistry(include_core=False)
    registry.add("sched", MIGRATIONS, plugin="forge-sched")
    try:
        upgrade(engine, registry, "sched_0002")
        with engine.begin() as conn:
            for fid in ("f1", "f2"):
                conn.execute(sa.text("INSERT INTO factories (id, capacity, status, updated_at) "
                                     "VALUES (:f, 10, 'UP', CURRENT_TIMESTAMP)"), {"f": fid})
            for n, (status, holder) in enumerate([("assigned", "f1"), ("in_progress", "f1"), ("assigned", "f2"),
                                                  ("pending", None), ("completed", None)]):
                conn.execute(sa.text(
                    "INSERT INTO orders (id, product_type, quantity, deadline, status, factory_id, progress, "
                    "created_at, updated_at, completions) VALUES (:id, 'p', 1, CURRENT_TIMESTAMP, :s, :f, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"), {"id": f"o{n}", "s": status, "f": holder})
        upgrade(engine, registry)
        assert kept(engine) == counted(engine) == {"f1": 2, "f2": 1}
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE orders SET status = 'completed', factory_id = NULL WHERE id = 'o1'"))
        assert kept(engine) == counted(engine) == {"f1": 1, "f2": 1}
    finally:
        engine.dispose()
