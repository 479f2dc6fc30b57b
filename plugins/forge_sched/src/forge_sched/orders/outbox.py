"""A transactional outbox: the messages about an assignment change are written in the transaction
that made it and published after it committed, so a crash between the two loses none (the next
relay, or the next leader's, sends them) and a rolled-back attempt sends none. Delivery is at least
once: a crash between publishing and deleting sends a message again (factories ignore an
assignment they already hold)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from forge_sched.orders.tables import outbox

__all__ = ["Publish", "message", "put", "put_many", "relay"]

Publish = Callable[[str, str, dict[str, Any], str | None], Awaitable[Any]]

_QUEUE = outbox.insert()
# Built once: the relay runs after every write and on every pass that finds messages queued, and
# building a select (ordering, limit, a new cache key) cost SQLAlchemy more than running it on SQLite.
_NEXT: dict[int, sa.Select[Any]] = {}
_SENT = outbox.delete().where(outbox.c.seq.in_(sa.bindparam("b_done", expanding=True)))


def message(topic: str, type_: str, payload: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """A message as an outbox row, for :func:`put_many`."""
    return {"topic": topic, "type": type_, "key": key, "payload": json.dumps(payload, separators=(",", ":"))}


def put(conn: Connection, topic: str, type_: str, payload: dict[str, Any], key: str | None = None) -> None:
    """Queue a message in the caller's transaction."""
    put_many(conn, [message(topic, type_, payload, key)])


def put_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Queue :func:`message` rows in the caller's transaction, in one statement; relayed in this order."""
    if rows:
        conn.execute(_QUEUE, rows)


async def relay(engine: Engine, publish: Publish, *, batch: int = 200,
                connect: Callable[[], AbstractContextManager[Connection]] | None = None) -> int:
    """Publish the queued messages in order, deleting each batch once it is sent; returns how many.
    A failing publish stops the relay there (the rest stay queued for the next call). ``connect``:
    where its connections come from (a :class:`~forge_sched.orders.transactions.Transactor`'s
    ``connect``), else ``engine.connect``."""
    if connect is None:
        connect = engine.connect
    sent = 0
    query = _NEXT.get(batch)
    if query is None:
        query = _NEXT[batch] = sa.select(outbox).order_by(outbox.c.seq).limit(batch)
    while True:
        with connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return sent
        done: list[int] = []
        try:
            for row in rows:
                await publish(row.topic, row.type, json.loads(row.payload), row.key)
                done.append(row.seq)
            # the subscribers in this process (memory bus) take them before the bookkeeping below
            await asyncio.sleep(0)
        finally:
            if done:
                with connect() as conn, conn.begin():
                    conn.execute(_SENT, {"b_done": done})
                sent += len(done)
        if len(rows) < batch:
            return sent
