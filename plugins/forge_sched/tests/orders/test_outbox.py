"""The transactional outbox's relay on SQLite and PostgreSQL: everything queued is published in order
and deleted once sent, across batches; a failing publish leaves the rest queued; a database error
reaches the caller as SQLAlchemy's own exception (what the REST API answers 503 to)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from forge_core.tactics import RetryPolicy

from forge_sched.orders import outbox
from forge_sched.orders.tables import outbox as outbox_table
from forge_sched.orders.transactions import Transactor

from .conftest import queued


def put(engine: sa.Engine, *numbers: int) -> None:
    with engine.begin() as conn:
        outbox.put_many(conn, [outbox.message(f"t/{n % 2}", "x.msg", {"n": n}, f"k{n}" if n % 3 else None)
                               for n in numbers])


def test_relay_publishes_in_order_across_batches_and_empties_the_outbox(engine):
    put(engine, *range(7))
    put(engine, 7)
    sent: list[tuple[str, str, dict[str, Any], str | None]] = []

    async def publish(topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        sent.append((topic, type_, payload, key))

    tx = Transactor(engine, RetryPolicy(max_attempts=1))
    assert asyncio.run(outbox.relay(engine, publish, batch=3, connect=tx.connect)) == 8
    assert sent == [(f"t/{n % 2}", "x.msg", {"n": n}, f"k{n}" if n % 3 else None) for n in range(8)]
    assert queued(engine) == []
    assert asyncio.run(outbox.relay(engine, publish)) == 0 and len(sent) == 8
    assert engine.pool.checkedout() == 0, "every connection went back to the pool"


def test_a_failing_publish_stops_the_relay_and_leaves_the_rest_queued(engine):
    put(engine, 1, 2, 3)
    sent: list[int] = []

    async def publish(topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        if payload["n"] == 2:
            raise ConnectionError("broker gone")
        sent.append(payload["n"])

    with pytest.raises(ConnectionError, match="broker gone"):
        asyncio.run(outbox.relay(engine, publish))
    assert sent == [1], "the first was sent (and deleted), the relay stopped at the failure"
    assert [p["n"] for _, _, p in queued(engine)] == [2, 3]


def test_a_database_error_is_sqlalchemys_own(engine):
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {outbox_table.name}"))

    async def publish(*args: Any) -> None:
        raise AssertionError("nothing to publish")

    with pytest.raises(sa.exc.ProgrammingError if engine.dialect.name == "postgresql" else sa.exc.OperationalError,
                       match=outbox_table.name):
        asyncio.run(outbox.relay(engine, publish))
    assert engine.pool.checkedout() == 0


def test_messages_are_queued_in_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        outbox.put(conn, "t/x", "x.msg", {"n": 1}, key="k")
        raise RuntimeError("the decision failed after queueing")
    assert queued(engine) == [], "rolled back with the transaction"
    with engine.begin() as conn:
        outbox.put(conn, "t/x", "x.msg", {"n": 1}, key="k")
        outbox.put_many(conn, [outbox.message("t/y", "x.msg", {"n": 2}), outbox.message("t/z", "x.msg", {"n": 3})])
    assert queued(engine) == [("t/x", "x.msg", {"n": 1}), ("t/y", "x.msg", {"n": 2}), ("t/z", "x.msg", {"n": 3})]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # NOT NULL topic, as SQLAlchemy raises it
        outbox.put_many(conn, [{"topic": None, "type": "x.msg", "key": None, "payload": "{}"}])
    assert len(queued(engine)) == 3


def test_an_event_relay_reads_nothing_once_what_this_process_queued_is_gone(engine):
    sent: list[int] = []
    reads: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: reads.append(args[2]))

    async def publish(topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        sent.append(payload["n"])
        if payload["n"] == 1:
            put(engine, 2)  # queued while the relay publishes: after its count, so not taken as gone

    def relay(only_new: bool) -> int:
        return asyncio.run(outbox.relay(engine, publish, only_new=only_new))

    put(engine, 1)
    assert relay(True) == 1 and sent == [1]
    assert relay(True) == 1 and sent == [1, 2]
    reads.clear()
    assert relay(True) == 0 and reads == [], "all this process queued is gone: not even a read"
    with engine.begin() as conn:  # another process's message, not counted here: only a full relay sends it
        conn.execute(outbox_table.insert(), {"topic": "t/x", "type": "x.msg", "key": None, "payload": '{"n": 3}'})
    assert relay(True) == 0
    assert relay(False) == 1 and sent == [1, 2, 3]
    put(engine, 4, 5)

    async def failing(topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        if payload["n"] == 5:
            raise ConnectionError("broker gone")
        sent.append(payload["n"])

    with pytest.raises(ConnectionError):
        asyncio.run(outbox.relay(engine, failing, only_new=True))
    assert relay(True) == 1 and sent == [1, 2, 3, 4, 5], "a relay that failed took nothing as gone"
    assert queued(engine) == []
