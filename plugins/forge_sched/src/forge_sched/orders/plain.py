"""Plain SQL on the DBAPI cursor of a transaction's own connection, for the order events' hot paths.

Through SQLAlchemy's execution path (cache lookup, parameter processing, result set-up, events) a
one-row statement cost more CPU than SQLite running it: a progress report's transaction was two
thirds SQLAlchemy. A :class:`Plain` statement is run by :func:`execute` on the same DBAPI connection
inside the same transaction (begun and committed by SQLAlchemy as before, so the isolation level,
SERIALIZABLE on PostgreSQL, and the retry on conflicts are unchanged); a driver error is raised as
SQLAlchemy's own ``DBAPIError`` subclass, so :func:`~forge_sched.orders.transactions.is_retryable`
and ``IntegrityError`` handlers see what they saw before.

The text is written once with ``:name`` parameters (sqlite3's named style) and turned into
``%(name)s`` for psycopg. Timestamps must be bound with :func:`stamp`: SQLite stores what
SQLAlchemy's ``DateTime`` writes (its own string format), PostgreSQL takes the datetime itself.

:func:`pipelined` runs a transaction's work in psycopg's pipeline mode on PostgreSQL: a statement
whose result nobody reads is sent without waiting for the server, so a run of writes (an order's
insert, assignment, outbox messages, stored answer) costs one round trip instead of one each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection

from forge_sched.orders.tables import orders

__all__ = ["Plain", "execute", "execute_many", "pipelined", "stamp", "stamp_reader"]

T = TypeVar("T")

_NAMED = re.compile(r"(?<!:):(\w+)")


class Plain:
    """One statement's text for SQLite (``:name``) and for psycopg (``%(name)s``)."""

    __slots__ = ("pyformat", "sqlite")

    def __init__(self, text: str) -> None:
        if "%" in text:
            raise ValueError(f"plain statement with a literal '%' (psycopg would read it as a parameter): {text!r}")
        self.sqlite = text
        self.pyformat = _NAMED.sub(r"%(\1)s", text)

    def __repr__(self) -> str:
        return f"Plain({self.sqlite!r})"


def execute(conn: Connection, statement: Plain, params: Mapping[str, Any] | None = None) -> Any:
    """Run ``statement`` on ``conn``'s DBAPI connection (in its transaction); returns the DBAPI
    cursor (``fetchone``/``fetchall``/``rowcount``). The caller began the transaction."""
    return _run(conn, statement, params or {}, many=False)


def execute_many(conn: Connection, statement: Plain, rows: Sequence[Mapping[str, Any]]) -> None:
    """``statement`` once per row of ``rows``, in one driver ``executemany`` (one row: ``execute``, which
    costs psycopg less: its ``executemany`` sets up a pipeline of its own)."""
    if len(rows) == 1:
        _run(conn, statement, rows[0], many=False)
    elif rows:
        _run(conn, statement, rows, many=True)


def _run(conn: Connection, statement: Plain, params: Any, *, many: bool) -> Any:
    dialect = conn.dialect
    text = statement.sqlite if dialect.name == "sqlite" else statement.pyformat
    # the pool's DBAPI connection: a plain attribute, where ``driver_connection`` (the same object for a
    # synchronous driver) is two properties and a dialect call, ~2 k instructions a statement
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    # SQLAlchemy's cursor events still see the statement (tracing, statement counts)
    events = conn._has_events or conn.engine._has_events
    if events:
        conn.dispatch.before_cursor_execute(conn, cursor, text, params, None, many)
    try:
        if many:
            cursor.executemany(text, params)
        else:
            cursor.execute(text, params)
    except dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise sa.exc.DBAPIError.instance(text, params, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
    if events:
        conn.dispatch.after_cursor_execute(conn, cursor, text, params, None, many)
    return cursor


_STAMPERS: dict[str, Any] = {}


def stamp(conn: Connection, value: datetime | None) -> Any:
    """``value`` as SQLAlchemy's ``DateTime(timezone=True)`` binds it on ``conn``'s dialect."""
    name = conn.dialect.name
    try:
        process = _STAMPERS[name]
    except KeyError:
        dialect = conn.dialect  # the dialect's own DateTime (SQLite's string format), not the generic type
        process = _STAMPERS[name] = orders.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    return value if process is None or value is None else process(value)


_READERS: dict[str, Any] = {}


def stamp_reader(conn: Connection) -> Callable[[Any], Any] | None:
    """SQLAlchemy's ``DateTime(timezone=True)`` result processor on ``conn``'s dialect, to read a timestamp a
    plain statement fetched as SQLAlchemy reads it (SQLite's string format to a datetime); None where the
    driver's value is already the datetime."""
    name = conn.dialect.name
    try:
        process: Callable[[Any], Any] | None = _READERS[name]
    except KeyError:
        dialect = conn.dialect
        process = _READERS[name] = orders.c.updated_at.type.dialect_impl(dialect).result_processor(dialect, None)
    return process


def pipelined(work: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """``work`` run in psycopg's pipeline mode on PostgreSQL (as is elsewhere), for
    :meth:`~forge_sched.orders.transactions.Transactor.run`.

    In pipeline mode a statement is queued, not waited for: the server's answers come back when a
    result is read (``fetchone``/``fetchall`` sync the pipeline) or when ``work`` returns. Reads that
    decide what happens next still wait for their answer, so ``work`` sees what it saw before; the
    writes between two reads, and those after the last, go in one round trip. The statements, their
    order and the transaction (begun and committed by SQLAlchemy, at its isolation level) are the
    same. Only for work that reads nothing of a write's result but rows it fetches: a cursor's
    ``rowcount`` is not known until the pipeline syncs.

    A statement that fails is reported at the next sync, by whichever call made it: a driver error
    from inside ``work`` is raised as SQLAlchemy's ``DBAPIError`` subclass (``IntegrityError`` for a
    duplicate key, ``OperationalError`` for a serialization failure, which the transactor retries),
    as :func:`execute` raises it."""

    def run(conn: Connection) -> T:
        dialect = conn.dialect
        if dialect.name != "postgresql" or dialect.driver != "psycopg":
            return work(conn)
        raw = conn.connection.driver_connection
        error = dialect.loaded_dbapi.Error
        try:
            with raw.pipeline():  # type: ignore[union-attr]
                return work(conn)
        except error as exc:
            raise sa.exc.DBAPIError.instance("pipeline", None, exc, error, dialect=dialect) from exc

    return run
