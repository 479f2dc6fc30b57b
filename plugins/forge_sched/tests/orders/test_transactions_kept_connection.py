"""The transactor's kept connection (``keep_connection``: the order scheduler under a virtual clock):
every transaction still commits when its work returns and is seen at once by other connections, a
failed one rolls back and the connection is replaced, the probe and the relay read what others
committed since, and ``close`` gives the connection back to the pool (later uses go through it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from forge_core.tactics import RetryPolicy

from forge_sched.orders import outbox
from forge_sched.orders.moves import Topics
from forge_sched.orders.service import NewOrder, OrderService
from forge_sched.orders.tables import orders
from forge_sched.orders.transactions import Conflict, Transactor

from .conftest import sqlite_engine

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def kept(sqlite_template, tmp_path, clock):
    engine = sqlite_engine(sqlite_template, tmp_path)
    tx = Transactor(engine, RetryPolicy(max_attempts=3, initial=0.001, retry_on=(Conflict,), seed=1),
                    keep_connection=True)
    ids = iter(range(1, 1000))
    service = OrderService(tx, topics=Topics("factory/{factory_id}/orders", "factory/{factory_id}/orders/revoked"),
                           created_topic="orders/created", now=clock.time, new_id=lambda: f"o{next(ids):04d}",
                           default_capacity=2, leader_epoch=lambda: None)
    yield engine, tx, service
    tx.close()
    engine.dispose()


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(orders.c.id, orders.c.status)).all())


def test_each_transaction_commits_on_the_kept_connection_and_close_gives_it_back(kept):
    engine, tx, service = kept
    asyncio.run(service.configure_factories({"f1": 1}))
    first, _ = asyncio.run(service.create_order(NewOrder("w", 1, DEADLINE)))
    assert statuses(engine) == {first["id"]: "assigned"}, "committed when the work returned"
    assert engine.pool.checkedout() == 1, "one connection kept between transactions"
    asyncio.run(service.create_order(NewOrder("w", 2, DEADLINE)))
    assert engine.pool.checkedout() == 1
    tx.close()
    assert engine.pool.checkedout() == 0
    asyncio.run(service.create_order(NewOrder("w", 3, DEADLINE)))  # through the pool from now on
    assert engine.pool.checkedout() == 0 and len(statuses(engine)) == 3


def test_a_failed_transaction_rolls_back_and_the_next_one_commits(kept):
    engine, tx, service = kept
    asyncio.run(service.configure_factories({"f1": 1}))

    def half_then_fail(conn):
        conn.execute(orders.update().values(quantity=99))
        raise ValueError("bug in the work")

    asyncio.run(service.create_order(NewOrder("w", 1, DEADLINE)))
    with pytest.raises(ValueError, match="bug in the work"):
        asyncio.run(tx.run(half_then_fail))
    with engine.connect() as conn:
        assert conn.execute(sa.select(orders.c.quantity)).scalars().all() == [1], "the failed work was rolled back"
    asyncio.run(service.create_order(NewOrder("w", 2, DEADLINE)))
    assert sorted(statuses(engine).values()) == ["assigned", "pending"]


def test_the_probe_and_the_relay_read_what_other_connections_committed(kept):
    engine, tx, service = kept
    assert service.probe() == (False, False)
    with engine.begin() as other:  # another process's shadow stores an order and queues a message
        other.execute(orders.insert().values(id="x1", product_type="w", quantity=1, deadline=DEADLINE,
                                             status="pending", progress=0.0, completions=0,
                                             created_at=DEADLINE, updated_at=DEADLINE))
        outbox.put(other, "orders/created", "sched.order_created", {"orderId": "x1"}, key="x1")
    assert service.probe() == (True, True), "the kept connection holds no stale snapshot"
    sent = []

    async def publish(topic, type_, payload, key):
        sent.append((topic, payload["orderId"]))

    assert asyncio.run(outbox.relay(engine, publish, connect=tx.connect)) == 1
    assert sent == [("orders/created", "x1")] and service.probe() == (True, False)
    assert engine.pool.checkedout() == 1


def test_a_replica_that_does_not_lead_probes_the_outbox_alone(sqlite_template, tmp_path, clock):
    from forge_core.tactics import NotLeader

    engine = sqlite_engine(sqlite_template, tmp_path)
    leading = [False]

    def epoch() -> int:
        if not leading[0]:
            raise NotLeader("a shadow")
        return 1

    tx = Transactor(engine, RetryPolicy(max_attempts=3, initial=0.001, retry_on=(Conflict,), seed=1))
    service = OrderService(tx, topics=Topics("f/{factory_id}/o", "f/{factory_id}/r"), created_topic="orders/created",
                           now=clock.time, new_id=lambda: "o1", default_capacity=2, leader_epoch=epoch)
    with engine.begin() as other:  # a pending order and a queued message, stored by another replica
        other.execute(orders.insert().values(id="x1", product_type="w", quantity=1, deadline=DEADLINE,
                                             status="pending", progress=0.0, completions=0,
                                             created_at=DEADLINE, updated_at=DEADLINE))
        outbox.put(other, "orders/created", "sched.order_created", {"orderId": "x1"}, key="x1")
    assert service.probe() == (False, True), "a shadow would not place the order: it is not asked about it"
    leading[0] = True
    assert service.probe() == (True, True)
    engine.dispose()


def test_plain_sql_commits_and_rolls_back_on_the_driver_connection(kept):
    """The kept connection's transactions end on the driver (driver_transaction): plain SQL's writes are
    committed when the work returns and rolled back when it raises, as through SQLAlchemy's begin()."""
    from forge_sched.orders.plain import Plain, execute
    from forge_sched.orders.transactions import driver_transaction

    engine, tx, service = kept
    asyncio.run(service.create_order(NewOrder("w", 1, DEADLINE)))
    set_quantity = Plain("UPDATE orders SET quantity = :q")

    def write(q: int, fail: bool):
        def work(conn):
            execute(conn, set_quantity, {"q": q})
            assert not conn.in_transaction(), "plain SQL begins no SQLAlchemy transaction"
            if fail:
                raise ValueError("bug in the work")
        return work

    def quantities() -> list[int]:
        with engine.connect() as conn:
            return conn.execute(sa.select(orders.c.quantity)).scalars().all()

    asyncio.run(tx.run(write(5, False)))
    assert quantities() == [5], "committed"
    with pytest.raises(ValueError, match="bug in the work"):
        asyncio.run(tx.run(write(7, True)))
    assert quantities() == [5], "rolled back"
    with tx.connect() as conn:
        conn.execute(sa.select(orders.c.id)).all()  # SQLAlchemy's autobegun transaction
        with pytest.raises(sa.exc.InvalidRequestError):
            driver_transaction(conn)
