"""An order's transaction in psycopg's pipeline mode (forge_sched.orders.plain.pipelined) on SQLite and a
real PostgreSQL: reads see the writes queued before them, a statement that fails arrives as SQLAlchemy's
error (so the idempotency race and the retry on conflicts behave as before), and the guarantees hold
with it: two replicas racing one Idempotency-Key make one order, a deposed leader writes nothing."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from forge_core.tactics import NotLeader

from forge_sched.orders.plain import Plain, execute, pipelined, stamp
from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import fences, orders

from .conftest import migrated, queued

AT = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)
INSERT = Plain(f"INSERT INTO {fences.name} (name, epoch, updated_at) VALUES (:name, :epoch, :at)")
READ = Plain(f"SELECT epoch FROM {fences.name} WHERE name = :name")


def test_a_read_sees_the_writes_queued_before_it_and_all_commit(engine):
    def work(conn: sa.Connection) -> int:
        execute(conn, INSERT, {"name": "a", "epoch": 1, "at": stamp(conn, AT)})  # queued, not waited for
        execute(conn, INSERT, {"name": "b", "epoch": 2, "at": stamp(conn, AT)})
        seen = int(execute(conn, READ, {"name": "b"}).fetchone()[0])
        execute(conn, INSERT, {"name": "c", "epoch": seen + 1, "at": stamp(conn, AT)})  # sent when work returns
        return seen

    with engine.begin() as conn:
        assert pipelined(work)(conn) == 2
    with engine.connect() as conn:
        assert dict(conn.execute(sa.select(fences.c.name, fences.c.epoch)).all()) == {"a": 1, "b": 2, "c": 3}


def test_a_statement_failing_after_it_was_queued_is_sqlalchemys_error_and_nothing_commits(engine):
    def work(conn: sa.Connection) -> None:
        execute(conn, INSERT, {"name": "first", "epoch": 1, "at": stamp(conn, AT)})
        execute(conn, INSERT, {"name": "twice", "epoch": 1, "at": stamp(conn, AT)})
        execute(conn, INSERT, {"name": "twice", "epoch": 2, "at": stamp(conn, AT)})  # fails when the pipeline syncs

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        pipelined(work)(conn)
    with engine.connect() as conn:
        assert conn.execute(sa.select(fences.c.name)).all() == []


def test_a_deposed_leader_creates_nothing(engine, make_service):
    asyncio.run(make_service(epoch=2).configure_factories({"f1": 5}))
    deposed = make_service(epoch=1)
    with pytest.raises(NotLeader):
        asyncio.run(deposed.create_order(NewOrder("widget", 1, AT), idempotency_key="late"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one() == 0
    assert queued(engine) == []


@pytest.mark.servers
def test_two_replicas_racing_each_idempotency_key_make_one_order_with_one_set_of_messages(
        postgres_url, make_service_on):
    """Two services on two engines (two replicas' pools) post the same keys at the same instant, in
    threads: SERIALIZABLE and the unique key make one of each pair lose (a serialization failure
    retried, or the duplicate key answered as a replay), in the pipeline as before."""
    engines = [migrated(postgres_url), None]
    engines[1] = sa.create_engine(engines[0].url)
    try:
        services = [make_service_on(e, max_attempts=10) for e in engines]
        asyncio.run(services[0].configure_factories({"f1": 1000, "f2": 1000}))
        keys = [f"race-{n}" for n in range(30)]
        answers: list[list[tuple[dict[str, object], bool]]] = [[], []]
        gate = threading.Barrier(2)

        def replica(i: int) -> None:
            async def post_all() -> None:
                for key in keys:
                    await asyncio.to_thread(gate.wait)
                    answers[i].append(await services[i].create_order(NewOrder("widget", 2, AT), idempotency_key=key))

            asyncio.run(post_all())

        threads = [threading.Thread(target=replica, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [len(a) for a in answers] == [len(keys), len(keys)]
        for (view_a, created_a), (view_b, created_b) in zip(*answers, strict=True):
            assert view_a == view_b, "both replicas answer with the one order"
            assert created_a != created_b, "exactly one of the two created it"
        with engines[0].connect() as conn:
            stored = conn.execute(sa.select(orders.c.idempotency_key, orders.c.status)).all()
        assert sorted(k for k, _ in stored) == sorted(keys)
        assert {s for _, s in stored} == {"assigned"}
        messages = queued(engines[0])
        created = [p["orderId"] for _, kind, p in messages if kind == "sched.order_created"]
        assigned = [p["orderId"] for _, kind, p in messages if kind == "sched.order_assigned"]
        assert len(created) == len(set(created)) == len(keys)
        assert sorted(assigned) == sorted(created)
    finally:
        for e in engines:
            if e is not None:
                e.dispose()
