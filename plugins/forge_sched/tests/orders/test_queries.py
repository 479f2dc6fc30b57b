"""The read side (forge_sched.orders.queries): a factory's view in plain SQL is what SQLAlchemy reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa
from forge_core.tactics import RetryPolicy

from forge_sched.orders import queries
from forge_sched.orders.moves import HELD_TABLE
from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import factories
from forge_sched.orders.transactions import Transactor

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


def through_sqlalchemy(engine: sa.Engine) -> list[dict[str, object]]:
    """The views as SQLAlchemy's Core reads them (the statement's result processing, DateTime included)."""
    with engine.connect() as conn:
        held = dict(conn.execute(sa.text(f"SELECT factory_id, held FROM {HELD_TABLE}")).all())
        rows = conn.execute(sa.select(factories).order_by(factories.c.id)).all()
    return [{"id": f.id, "status": f.status, "reason": f.reason, "risk": f.risk, "capacity": f.capacity,
             "load": held.get(f.id, 0), "free": f.capacity - held.get(f.id, 0),
             "updated_at": queries._iso(f.updated_at)} for f in rows]


def test_factory_views_read_in_plain_sql_what_sqlalchemy_reads(engine, make_service, clock):
    service = make_service()
    asyncio.run(service.configure_factories({"f2": 3, "f1": 2}))
    for _ in range(3):
        asyncio.run(service.create_order(NewOrder("p", 1, DEADLINE)))
    clock.now += 12.5
    assert asyncio.run(service.report_status("f1", "DEGRADED", "errors", None, "mms")).accepted
    views = queries.factory_views(engine)
    assert views == through_sqlalchemy(engine)
    assert [(v["id"], v["status"], v["reason"], v["load"], v["free"]) for v in views] == [
        ("f1", "DEGRADED", "errors", 0, 2), ("f2", "UP", None, 3, 0)], "by id, the held counts joined (f1 drained)"
    f1 = views[0]["updated_at"]
    assert isinstance(f1, str) and f1.endswith("Z")
    assert datetime.fromisoformat(f1).timestamp() == clock.now, "the report's time, in UTC"
    assert queries.factory_views(engine, "f2") == [views[1]] and queries.factory_views(engine, "f9") == []


def test_factory_views_on_a_kept_connection_leave_no_transaction_open_on_the_driver(engine, make_service):
    service = make_service()
    asyncio.run(service.configure_factories({"f1": 2}))
    tx = Transactor(engine, RetryPolicy(max_attempts=1), keep_connection=True)
    try:
        assert queries.factory_views(engine, connect=tx.connect) == queries.factory_views(engine)
        raw = tx.raw().dbapi_connection
        if engine.dialect.name == "sqlite":
            assert not raw.in_transaction
        else:  # psycopg opened one at the read: rolled back, as a checkin would
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        asyncio.run(service.create_order(NewOrder("p", 1, DEADLINE)))  # committed on another connection: seen
        assert queries.factory_views(engine, "f1", connect=tx.connect)[0]["load"] == 1
    finally:
        tx.close()
