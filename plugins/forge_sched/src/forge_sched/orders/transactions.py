"""One database transaction, retried on a deadlock or serialization failure (the core retry tactic).

PostgreSQL runs each transaction at SERIALIZABLE: a concurrent writer (the other replica
creating an order, a second status report) makes one of two transactions fail with SQLSTATE
40001 (or 40P01 for a deadlock) instead of silently interleaving; the loser is run again from
the start, up to ``max_attempts`` times. SQLite serialises writers itself; ``database is
locked`` is retried the same way.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from forge_core.tactics import RetryPolicy
from sqlalchemy import Connection, Engine

from forge_sched.orders.progress import ProgressDue

__all__ = ["RETRYABLE_SQLSTATES", "Conflict", "Transactor", "is_retryable"]

T = TypeVar("T")

#: serialization_failure, deadlock_detected
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

#: Commits of transactions that may have made work for the pass (an order stored or moved, a factory
#: changed, a message queued), per database URL, shared by every Transactor of this process (both
#: replicas of a simulated plant): see :attr:`Transactor.changes`.
_CHANGES: dict[Any, list[int]] = {}
#: Progress reports waiting for the next transaction, per database URL, shared the same way.
_PROGRESS: dict[Any, ProgressDue] = {}
#: [changes, when] of this process's newest probe that found no work at all, per engine (the replicas of a
#: plant share theirs; a test's engine on a reused URL starts afresh): see :meth:`Transactor.idle_since`.
_IDLE: weakref.WeakKeyDictionary[Engine, list[float]] = weakref.WeakKeyDictionary()


class Conflict(Exception):
    """A transaction lost to a concurrent one (serialization failure, deadlock, locked SQLite)."""


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy DBAPIError) is a conflict that the same work may win when run again."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in RETRYABLE_SQLSTATES:
        return True
    return isinstance(exc, sa.exc.OperationalError) and "database is locked" in str(orig)


class Transactor:
    """Runs ``work(conn)`` in one transaction; ``policy`` retries it on :class:`Conflict`.

    ``keep_connection`` (the order scheduler sets it under a virtual clock only): the transactions,
    the pass's probe and the outbox relay use one connection kept between them instead of a pool
    checkout each. A checkout pings the database (``pool_pre_ping``, for a PostgreSQL that restarted)
    and a checkin rolls back: for the simulation's ~11,500 short statements an hour on SQLite that was
    as much CPU as the statements. Each transaction still commits when its work returns, so what is
    durable, and when, is unchanged; a real clock keeps the pool's checks. :meth:`close` (the
    component's stop, or its kill) gives the connection back; later uses go through the pool."""

    def __init__(self, engine: Engine, policy: RetryPolicy, *, keep_connection: bool = False) -> None:
        self.engine = engine.execution_options(isolation_level="SERIALIZABLE") \
            if engine.dialect.name == "postgresql" else engine
        self.policy = policy
        #: Conflicts seen (each one retried or, after the last attempt, raised).
        self.conflicts = 0
        self.keep_connection = keep_connection
        self._kept: Connection | None = None
        self._changes = _CHANGES.setdefault(engine.url, [0])
        #: Order progress written at the start of this process's next transaction on the database
        #: (forge_sched.orders.progress); :meth:`write_progress` writes it alone.
        self.progress = _PROGRESS.get(engine.url) or _PROGRESS.setdefault(engine.url, ProgressDue())
        self._idle = _IDLE.setdefault(engine, [-1, -math.inf])

    @property
    def changes(self) -> int:
        """How many transactions on this database committed in this process so far, save those run with
        ``changes_work=False``: a number that has not moved since a read found no work means no writer
        of this process made any (another process's writes move it not)."""
        return self._changes[0]

    def found_idle(self, at: float) -> None:
        """A probe at ``at`` found no pending order and no queued message (see :meth:`idle_since`)."""
        self._idle[:] = (self._changes[0], at)

    def idle_since(self) -> float | None:
        """When a probe of this process last found no pending order and no queued message, if no
        transaction of this process that may make work has committed since (:attr:`changes` as then);
        else None. Any replica of the process may take that read as its own probe of that instant: only
        another process can have changed what it found, which a probe is only asked to see within its
        ``probe_every``."""
        changes, at = self._idle
        return at if changes == self._changes[0] else None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for one read or one transaction (``with tx.connect() as conn, conn.begin():``):
        the kept one, or one from the pool. It is left without a transaction, as a checkin leaves it."""
        if not self.keep_connection:
            with self.engine.connect() as pooled:
                yield pooled
            return
        conn = self._kept
        if conn is None or conn.closed or conn.invalidated:
            conn = self._kept = self.engine.connect()
        try:
            yield conn
        except BaseException:
            self._drop()  # a failure may have left it unusable: the next use takes a fresh one
            raise
        if conn.in_transaction():  # a read's autobegun transaction ends here, as at a checkin
            conn.rollback()

    def raw(self) -> Any:
        """The kept connection's DBAPI connection (for plain SQL), or None without one."""
        if not self.keep_connection:
            return None
        conn = self._kept
        if conn is None or conn.closed or conn.invalidated:
            conn = self._kept = self.engine.connect()
        return conn.connection

    def _drop(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            with contextlib.suppress(Exception):
                kept.close()

    def close(self) -> None:
        """Give the kept connection back to the pool and keep none from now on. Idempotent."""
        self.keep_connection = False
        self._drop()

    def _once(self, work: Callable[[Connection], T], changes_work: bool | Callable[[T], bool] = True) -> T:
        progress = self.progress
        carried = None
        try:
            with self.connect() as conn, (driver_transaction(conn) if self.keep_connection else conn.begin()):
                if progress.rows:
                    carried = progress.ride(conn)
                result = work(conn)
        except BaseException as exc:
            if carried is not None:  # rolled back: the reports wait for the next transaction
                progress.restore(carried)
            if isinstance(exc, sa.exc.DBAPIError) and is_retryable(exc):
                self.conflicts += 1
                raise Conflict(str(exc.orig).strip().splitlines()[0]) from exc
            raise
        # committed (counted after the commit: a read that saw nothing of it sees the count moved)
        if changes_work is True or (changes_work is not False and changes_work(result)):
            self._changes[0] += 1
        return result

    def write_progress(self) -> int:
        """Write the waiting progress reports in a transaction of their own now; returns how many."""
        rows = len(self.progress.rows)
        if rows:
            self._once(_nothing, changes_work=False)
        return rows

    async def run(self, work: Callable[[Connection], T], *,
                  changes_work: bool | Callable[[T], bool] = True) -> T:
        """``work`` in a transaction, run again (after the policy's backoff, on its clock) when it
        lost to a concurrent one; the last :class:`Conflict` escapes after ``max_attempts``.

        The first attempt runs before the policy is involved: nearly every transaction commits at
        once, and setting up the policy's retry machinery (tenacity's state, callbacks, a coroutine)
        for each cost about as much as a progress update's SQL (3 % of industry40's simulated day).
        A first attempt that lost is handed to the policy as its own first failure, so the backoff
        schedule, the attempt limit and the policy's counts are the same as when it ran every attempt.

        ``changes_work=False``: the caller knows ``work`` stores no pending order, frees or adds no
        capacity and queues no message (an order's progress), so its commit leaves :attr:`changes` as it
        was; a function of ``work``'s result says so per result (a placement that placed nothing)."""
        stats = self.policy.stats
        try:
            result = self._once(work, changes_work)
        except Conflict as exc:
            lost: Conflict | None = exc
        except BaseException:
            stats.calls += 1
            stats.attempts += 1
            stats.failures += 1
            raise
        else:
            stats.calls += 1
            stats.attempts += 1
            stats.successes += 1
            return result

        async def attempt() -> T:
            nonlocal lost
            if lost is not None:  # the policy's first attempt is the one that already lost
                first, lost = lost, None
                raise first
            return self._once(work, changes_work)

        return await self.policy.acall(attempt)


def _nothing(conn: Connection) -> None:
    """The work of a transaction that only carries waiting progress reports."""


def driver_transaction(conn: Connection) -> AbstractContextManager[None]:
    """``with tx.connect() as conn, driver_transaction(conn):`` one transaction ended on ``conn``'s driver
    connection, where ``conn.begin()`` would end it through SQLAlchemy: committed when the block ends,
    rolled back if it raises (``connect`` then drops the kept connection, as after ``conn.begin()``).

    SQLAlchemy's ``begin()`` sends nothing to the database (the driver opens the transaction at the first
    statement) and its ``commit()`` is the driver's; their bookkeeping cost ~28 k instructions a
    transaction, a short statement's worth, on every order event. What the block ran through SQLAlchemy
    (``conn.execute`` begins SQLAlchemy's own transaction) is ended through SQLAlchemy. A driver error at
    the commit is raised as SQLAlchemy's ``DBAPIError`` subclass, as ``conn.commit()`` raises it
    (:func:`is_retryable` sees a locked database as before)."""
    if conn.in_transaction():  # as conn.begin() refuses it
        raise sa.exc.InvalidRequestError("a transaction is already begun on this connection")
    return _DriverTransaction(conn)


class _DriverTransaction:
    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        conn = self.conn
        if conn.in_transaction():  # SQLAlchemy's own, begun by a statement run through it
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
            return
        dialect = conn.dialect
        raw = conn.connection.dbapi_connection
        if exc_type is not None:
            with contextlib.suppress(dialect.loaded_dbapi.Error):  # a broken connection: connect drops it
                raw.rollback()  # type: ignore[union-attr]
            return
        try:
            raw.commit()  # type: ignore[union-attr]
        except dialect.loaded_dbapi.Error as error:
            raise sa.exc.DBAPIError.instance("COMMIT", None, error, dialect.loaded_dbapi.Error,
                                             dialect=dialect) from error
