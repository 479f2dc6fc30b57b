"""Plain statements (forge_sched.orders.plain) on SQLite and a real PostgreSQL: what they write reads
back through SQLAlchemy as its own statements' writes do, they run in the caller's transaction, and
a driver error arrives as SQLAlchemy's error class (so conflicts are still retried)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from forge_sched.orders import queries
from forge_sched.orders.plain import Plain, execute, stamp
from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import factories, fences

AT = datetime(2027, 3, 4, 5, 6, 7, 0, tzinfo=UTC)  # microsecond 0: sqlite3's own adapter would drop it


def test_a_stamp_reads_back_as_sqlalchemy_wrote_it(engine):
    with engine.begin() as conn:
        conn.execute(fences.insert().values(name="by-sqlalchemy", epoch=1, updated_at=AT))
        execute(conn, Plain(f"INSERT INTO {fences.name} (name, epoch, updated_at) VALUES (:name, :epoch, :at)"),
                {"name": "plain", "epoch": 2, "at": stamp(conn, AT)})
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text(f"SELECT name, CAST(updated_at AS TEXT) FROM {fences.name}")).all())
        read = dict(conn.execute(sa.select(fences.c.name, fences.c.updated_at)).all())
    assert stored["plain"] == stored["by-sqlalchemy"]
    assert read["plain"] == read["by-sqlalchemy"]


def test_a_plain_statement_is_part_of_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        execute(conn, Plain(f"INSERT INTO {factories.name} (id, capacity, status, updated_at) "
                            "VALUES (:id, 1, 'UP', :at)"), {"id": "f-rolled-back", "at": stamp(conn, AT)})
        raise RuntimeError("the work fails after the statement")
    with engine.connect() as conn:
        assert conn.execute(sa.select(factories.c.id)).all() == []


def test_a_driver_error_is_raised_as_sqlalchemys(engine):
    insert = Plain(f"INSERT INTO {fences.name} (name, epoch, updated_at) VALUES (:name, 1, :at)")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        execute(conn, insert, {"name": "twice", "at": stamp(conn, AT)})
        execute(conn, insert, {"name": "twice", "at": stamp(conn, AT)})


def test_a_literal_percent_is_refused():
    with pytest.raises(ValueError, match="literal"):
        Plain("SELECT 1 WHERE 'a' LIKE '%'")


def test_progress_and_completion_show_in_the_api_views(engine, make_service, clock):
    service = make_service(epoch=1)
    asyncio.run(service.configure_factories({"f1": 2}))
    view, _ = asyncio.run(service.create_order(NewOrder("widget", 3, datetime(2030, 1, 1, tzinfo=UTC))))
    clock.now += 1.5
    assert asyncio.run(service.progress(view["id"], "f1", 0.25))
    assert not asyncio.run(service.progress(view["id"], "f2", 0.5)), "only the holder's progress counts"
    seen = queries.get_order(engine, view["id"])
    assert seen is not None
    assert (seen["status"], seen["progress"]) == ("in_progress", 0.25)
    assert seen["updated_at"] == datetime.fromtimestamp(clock.now, UTC).isoformat().replace("+00:00", "Z")
    clock.now += 1.0
    assert asyncio.run(service.complete(view["id"], "f1")) == "completed"
    assert asyncio.run(service.complete(view["id"], "f1")) == "duplicate"
    done = queries.get_order(engine, view["id"])
    assert done is not None
    assert (done["status"], done["factory_id"], done["completed_by"], done["progress"]) == ("completed", None, "f1", 1.0)
    assert done["completed_at"] == done["updated_at"] == datetime.fromtimestamp(clock.now, UTC).isoformat().replace(
        "+00:00", "Z")
    assert done["assignments"][0]["revoke_reason"] == "completed"


def test_progress_on_an_order_in_progress_moves_progress_and_time_alone(engine, make_service, clock):
    """The lighter UPDATE (P_PROGRESS_ON) for an order in progress: its progress and time change, the
    status, holder and held count do not; a non-holder's is refused; completed orders take none."""
    service = make_service(epoch=1)
    asyncio.run(service.configure_factories({"f1": 2, "f2": 2}))
    view, _ = asyncio.run(service.create_order(NewOrder("widget", 3, datetime(2030, 1, 1, tzinfo=UTC))))
    holder, other = view["factory_id"], ({"f1", "f2"} - {view["factory_id"]}).pop()
    assert asyncio.run(service.progress(view["id"], holder, 0.25))  # assigned -> in_progress
    held = {f["id"]: f["load"] for f in queries.factory_views(engine)}
    for step, value in enumerate((0.5, 0.75, 2.0), start=1):
        clock.now += 1.0
        assert asyncio.run(service.progress(view["id"], holder, value))
        assert not asyncio.run(service.progress(view["id"], other, 0.1))
        seen = queries.get_order(engine, view["id"])
        assert seen is not None
        assert (seen["status"], seen["factory_id"], seen["progress"]) == ("in_progress", holder, min(value, 1.0))
        assert seen["updated_at"] == datetime.fromtimestamp(clock.now, UTC).isoformat().replace("+00:00", "Z")
        assert {f["id"]: f["load"] for f in queries.factory_views(engine)} == held, f"step {step}"
    assert asyncio.run(service.complete(view["id"], holder)) == "completed"
    assert not asyncio.run(service.progress(view["id"], holder, 0.9))
    assert queries.get_order(engine, view["id"])["progress"] == 1.0
