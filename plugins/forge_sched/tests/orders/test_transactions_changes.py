"""``Transactor.changes``: the count of committed transactions that may have made work for the order
scheduler's pass, which the pass compares before reading the database (see test_order_scheduler_probe)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from forge_core.tactics import RetryPolicy

from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import orders
from forge_sched.orders.transactions import Conflict, Transactor

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


def transactor(engine) -> Transactor:
    return Transactor(engine, RetryPolicy(max_attempts=2, initial=0.001, max_backoff=0.01, retry_on=(Conflict,), seed=1))


def test_a_commit_moves_it_and_every_transactor_of_the_database_sees_it(engine):
    one, two = transactor(engine), transactor(engine)
    before = one.changes
    assert two.changes == before
    asyncio.run(one.run(lambda conn: conn.execute(sa.select(orders.c.id)).all()))
    assert one.changes == two.changes == before + 1  # counted per database, not per transactor


def test_work_said_to_make_none_and_a_rolled_back_transaction_leave_it(engine):
    tx = transactor(engine)
    before = tx.changes
    asyncio.run(tx.run(lambda conn: None, changes_work=False))
    assert tx.changes == before

    def fail(conn):
        conn.execute(orders.delete())
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        asyncio.run(tx.run(fail))
    assert tx.changes == before, "nothing was committed"


def test_the_service_counts_creation_not_progress(make_service):
    service = make_service(epoch=1)
    asyncio.run(service.configure_factories({"f1": 2}))
    created = service.tx.changes
    view, _ = asyncio.run(service.create_order(NewOrder("gear", 1, DEADLINE), assign=True))
    assert service.tx.changes == created + 1 and view["status"] == "assigned"
    asyncio.run(service.progress(view["id"], "f1", 0.5))
    assert service.tx.changes == created + 1, "progress makes no pending order, capacity or message"
    asyncio.run(service.complete(view["id"], "f1"))
    assert service.tx.changes == created + 2
