"""A transactional outbox: the messages about an assignment change are written in the transaction
that made it and published after it committed, so a crash between the two loses none (the next
relay, or the next leader's, sends them) and a rolled-back attempt sends none. Delivery is at least
once: a crash between publishing and deleting sends a message again (factories ignore an
assignment they already hold)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from forge_sched.orders.tables import outbox
from forge_sched.orders.transactions import driver_transaction

__all__ = ["Publish", "message", "put", "put_many", "relay"]

Publish = Callable[[str, str, dict[str, Any], str | None], Awaitable[Any]]

# The outbox's statements are plain SQL on the DBAPI cursor of the transaction's connection: a message
# is queued and relayed for every order a REST request commits, and through SQLAlchemy's execution path
# (cache look-up, parameter and result processing) each statement cost more CPU than SQLite running it.
# The insert's parameters are named in each driver's style; the relay's read and delete take none (the
# limit and the sequence numbers are integers written into the text), so one text serves both.
_COLUMNS = ("topic", "type", "key", "payload")
_QUEUE = {"sqlite": f"INSERT INTO {outbox.name} ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join(':' + c for c in _COLUMNS)})",
          "postgresql": f"INSERT INTO {outbox.name} ({', '.join(_COLUMNS)}) "
                        f"VALUES ({', '.join(f'%({c})s' for c in _COLUMNS)})"}
_NEXT = f"SELECT seq, topic, type, key, payload FROM {outbox.name} ORDER BY seq LIMIT {{batch:d}}"
_SENT = f"DELETE FROM {outbox.name} WHERE seq IN ({{seqs}})"
#: PostgreSQL's: one text whatever the sequence numbers, so psycopg prepares it once (a text per batch
#: was parsed and planned by the server each time)
_SENT_ANY = f"DELETE FROM {outbox.name} WHERE seq = ANY(%(seqs)s)"

#: Per database URL, shared by every writer of this process (both replicas of a simulated plant):
#: [messages queued so far, how many of those a relay has seen gone]. A relay that starts when both
#: are equal would find nothing this process queued (see ``relay``'s ``only_new``).
_QUEUED: dict[Any, list[int]] = {}
#: The same lists by engine: a URL hashes by rendering itself as text (``hash(str(url))``), which cost
#: more than the rest of a ``put_many`` or an idle relay; an engine hashes by identity.
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()


def _counts(engine: Engine) -> list[int]:
    counts = _BY_ENGINE.get(engine)
    if counts is None:
        counts = _BY_ENGINE[engine] = _QUEUED.setdefault(engine.url, [0, 0])
    return counts


#: ``json.dumps(payload, separators=(",", ":"))``'s encoder, made once: ``dumps`` with any option builds a
#: JSONEncoder per call (every message of every order)
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def message(topic: str, type_: str, payload: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """A message as an outbox row, for :func:`put_many`."""
    return {"topic": topic, "type": type_, "key": key, "payload": _COMPACT(payload)}


def put(conn: Connection, topic: str, type_: str, payload: dict[str, Any], key: str | None = None) -> None:
    """Queue a message in the caller's transaction."""
    put_many(conn, [message(topic, type_, payload, key)])


def put_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Queue :func:`message` rows in the caller's transaction, in one statement; relayed in this order."""
    if rows:
        _counts(conn.engine)[0] += len(rows)  # counted when queued: a rolled-back put only costs a relay
        text = _QUEUE.get(conn.dialect.name)
        if text is None:  # another database: SQLAlchemy writes its dialect
            conn.execute(outbox.insert(), rows)
        else:
            _plain(conn, text, rows).close()


async def relay(engine: Engine, publish: Publish, *, batch: int = 200,
                connect: Callable[[], AbstractContextManager[Connection]] | None = None,
                only_new: bool = False) -> int:
    """Publish the queued messages in order, deleting each batch once it is sent; returns how many.
    A failing publish stops the relay there (the rest stay queued for the next call). ``connect``:
    where its connections come from (a :class:`~forge_sched.orders.transactions.Transactor`'s
    ``connect``), else ``engine.connect``.

    On PostgreSQL one connection serves the whole relay (one pool checkout and ping, not one per
    statement), and its read and its delete each run alone in autocommit: a single statement is
    atomic and reads one snapshot, so the read-only transaction around it only added two round trips
    (BEGIN, COMMIT). Elsewhere each runs in a transaction of its own, on a connection of its own.

    ``only_new``: return 0 at once, reading nothing, if every message this process queued on this
    database is known gone: a relay that started after the last of them was queued ran to its end
    (each message it read published and deleted; one that another relay read too, published by that
    one or both, at least once as before). What another process left is not counted: the caller's
    periodic relay (after a read that found the outbox not empty) must not pass it. Two thirds of
    industry40's relays after an order event (a completion, a status report) found nothing to send."""
    if connect is None:
        connect = engine.connect
    counts = _counts(engine)
    queued = counts[0]  # before the first read, with no await in between (no transaction is open here)
    if only_new and counts[1] >= queued:
        return 0
    sent = 0
    query = _NEXT.format(batch=int(batch))
    with contextlib.ExitStack() as held:
        shared: Connection | None = None

        def run(text: str, *, read: bool, seqs: list[int] | None = None) -> list[Any]:
            nonlocal shared
            if engine.dialect.name == "postgresql":
                if shared is None or shared.closed or shared.invalidated:
                    shared = held.enter_context(connect())
                if seqs is not None:
                    return _alone(shared, _SENT_ANY, read=False, params={"seqs": seqs})
                return _alone(shared, text, read=read)
            # a transaction of its own, ended at once (on the driver: see driver_transaction)
            with connect() as conn, driver_transaction(conn):
                cursor = _plain(conn, text)
                rows = cursor.fetchall() if read else []
                cursor.close()
                return rows

        while True:
            rows = run(query, read=True)
            if not rows:
                counts[1] = max(counts[1], queued)
                return sent
            done: list[int] = []
            try:
                for seq, topic, type_, key, payload in rows:
                    await publish(topic, type_, json.loads(payload), key)
                    done.append(seq)
                # the subscribers in this process (memory bus) take them before the bookkeeping below
                await asyncio.sleep(0)
            finally:
                if done:
                    run(_SENT.format(seqs=",".join(str(int(seq)) for seq in done)), read=False, seqs=done)
                    sent += len(done)
            if len(rows) < batch:
                counts[1] = max(counts[1], queued)
                return sent


def _alone(conn: Connection, text: str, *, read: bool, params: dict[str, Any] | None = None) -> list[Any]:
    """``text`` on ``conn``'s DBAPI connection in autocommit (psycopg: a client-side switch, no round
    trip), switched back before returning: no await in between, so a connection shared with a
    transactor (its kept one) is never seen in autocommit by a transaction."""
    if conn.in_transaction():  # no await inside a transaction: none is open between the relay's awaits
        raise RuntimeError("outbox relay: the connection is inside a transaction")
    raw = conn.connection.driver_connection
    raw.autocommit = True  # type: ignore[union-attr]
    try:
        cursor = _plain(conn, text, None if params is None else [params])
        rows = cursor.fetchall() if read else []
        cursor.close()
        return rows
    finally:
        with contextlib.suppress(Exception):  # a broken connection: the pool discards it
            raw.autocommit = False  # type: ignore[union-attr]


def _plain(conn: Connection, text: str, rows: list[dict[str, Any]] | None = None) -> Any:
    """``text`` run on ``conn``'s DBAPI cursor (once per parameter set in ``rows``, if given), in the
    transaction ``conn`` began; a driver error is raised as SQLAlchemy's ``DBAPIError`` subclass (as
    ``conn.execute`` would: ``IntegrityError``, ``OperationalError`` -- what the REST API answers 503
    to -- and the retry's conflict detection see what they saw before)."""
    dialect = conn.dialect
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]  # as plain._run's
    try:
        if rows is None:
            cursor.execute(text)
        elif len(rows) == 1:
            cursor.execute(text, rows[0])
        else:
            cursor.executemany(text, rows)
    except dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise sa.exc.DBAPIError.instance(text, rows, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
    return cursor
