"""The retried transaction, against a real serialization failure: PostgreSQL at SERIALIZABLE with a
second transaction committing a change to the same rows while the first is under way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from forge_core.storage import create_engine_from_url

from forge_sched.orders import queries
from forge_sched.orders.service import NewOrder
from forge_sched.orders.tables import orders
from forge_sched.orders.transactions import Conflict, is_retryable

from .conftest import migrated

pytestmark = pytest.mark.servers

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def pg(postgres_url):
    engine = migrated(postgres_url)
    rival = create_engine_from_url(postgres_url).execution_options(isolation_level="SERIALIZABLE")
    yield engine, rival
    rival.dispose()
    engine.dispose()


def interfere(engine, rival, *, times: int) -> list[int]:
    """Before the service's next ``times`` UPDATEs of orders, a rival SERIALIZABLE transaction reads and
    updates every order and commits first: the service's transaction, whose snapshot predates it,
    must fail with SQLSTATE 40001."""
    fired: list[int] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def rival_commits(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE ORDERS") and len(fired) < times:
            fired.append(1)
            with rival.begin() as other:
                other.execute(sa.select(orders)).all()
                other.execute(orders.update().values(updated_at=datetime.now(UTC)))

    return fired


def test_a_serialization_failure_is_retried_and_the_reschedule_commits_once(pg, make_service_on):
    engine, rival = pg
    s = make_service_on(engine)
    asyncio.run(s.configure_factories({"f1": 2, "f2": 2}))
    for i in range(2):
        asyncio.run(s.create_order(NewOrder("w", i + 1, DEADLINE)))
    attempts_before = s.tx.policy.stats.attempts
    fired = interfere(engine, rival, times=1)
    moved = asyncio.run(s.reschedule_orders("f1"))
    assert fired == [1]
    assert s.tx.conflicts == 1 and s.tx.policy.stats.retries == 1
    assert s.tx.policy.stats.attempts - attempts_before == 2, "the failed attempt, then the one that committed"
    assert moved == 1
    held = {o["factory_id"] for o in queries.list_orders(engine)}
    assert held == {"f2"}, "the second attempt moved f1's order; the first left nothing behind"
    history = queries.get_order(engine, next(o["id"] for o in queries.list_orders(engine)
                                             if len(queries.get_order(engine, o["id"])["assignments"]) > 1))
    assert [a["factory_id"] for a in history["assignments"]] == ["f1", "f2"], "one move, not two"


def test_it_gives_up_after_three_attempts_and_commits_nothing(pg, make_service_on):
    engine, rival = pg
    s = make_service_on(engine)
    asyncio.run(s.configure_factories({"f1": 2, "f2": 2}))
    for i in range(2):
        asyncio.run(s.create_order(NewOrder("w", i + 1, DEADLINE)))
    before = {o["id"]: o["factory_id"] for o in queries.list_orders(engine)}
    attempts_before = s.tx.policy.stats.attempts
    fired = interfere(engine, rival, times=10)
    with pytest.raises(Conflict, match="serializ") as info:
        asyncio.run(s.reschedule_orders("f1"))
    assert len(fired) == 3 and s.tx.policy.stats.attempts - attempts_before == 3
    assert "gave up after 3 attempt(s)" in "".join(getattr(info.value, "__notes__", []))
    assert {o["id"]: o["factory_id"] for o in queries.list_orders(engine)} == before


def test_only_conflicts_are_retryable():
    class Orig(Exception):
        sqlstate = "40P01"

    assert is_retryable(sa.exc.OperationalError("UPDATE", {}, Orig()))
    assert is_retryable(sa.exc.OperationalError("x", {}, Exception("database is locked")))
    assert not is_retryable(sa.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
    assert not is_retryable(ValueError("no"))
