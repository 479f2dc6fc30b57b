"""Several writes to one transaction, committed before anyone else could look (a virtual clock).

Under a virtual clock a component writes inline, one call at a time, and a transaction per small write
costs more than the write: the COMMIT, and the BEGIN and first statement around it (a third to a half of
a simulated day in the pasta plant and in sensor_monitoring). A :class:`CommitGroup` keeps one connection
of the engine and an open transaction across writes. Each write still runs at its call, in the open
transaction (a redelivery refused by a unique index or ``ON CONFLICT`` is refused at once, and what the
write returns is what it did), and the transaction is committed

* every ``size`` units (:meth:`CommitGroup.run`'s ``units``: readings, beats, 1 a write by default),
* before any other connection of the engine is checked out (a view, a check, a warm-up read, a test,
  the next life's load, from any thread): no reader through the engine finds a handled write missing,
* before another group on the same engine begins (two writers in one process: SQLite lets one
  transaction write at a time, and the other group would wait for a commit that never comes),
* at :meth:`CommitGroup.close` (the writer stops) and :meth:`CommitGroup.end` (``ctx.at_end``: also when
  the writer is killed, so a simulated SIGKILL keeps every handled write, as a commit per write does),

so what a reader and a kill see is what a commit per write gives. ``size`` 1 is a commit per write. A
connection the engine does not know (another engine, another process) sees only what is committed.

``before_commit(conn)`` runs in the transaction just before each COMMIT (state the writer merges between
commits, e.g. pasta's stock levels: the last value of each row, written once); ``after_commit()`` runs
after each successful COMMIT (the writer forgets what it merged).

A failing write rolls the open transaction back, the group's earlier writes with it; their calls are
kept and run again (in a new transaction, ``before_commit`` again, committed) before the error is raised,
so a rollback never takes a write the caller already counts as done. If that fails too (the database is
down) they stay, and run first in the next transaction, or at the next commit. A failing COMMIT is
handled the same way, with one more try. Every write must therefore be idempotent (running it again
stores nothing twice): an insert refused by its key, an upsert, an update to an absolute value.

Not thread-safe for writers (one writer a group: its :meth:`run`, :meth:`commit`, :meth:`close` in one
thread at a time), but a checkout in another thread waits for the write under way, then commits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

__all__ = ["CommitGroup", "Write"]

T = TypeVar("T")

#: a write: ``write(conn, *args) -> result``, idempotent (it may run again after a rollback)
Write = Callable[..., Any]

#: per engine, the group whose transaction is open on it (one at a time)
_OPEN: weakref.WeakKeyDictionary[Engine, CommitGroup] = weakref.WeakKeyDictionary()

log = logging.getLogger(__name__)


class CommitGroup:
    """Writes sharing a transaction on one kept connection of ``engine`` (an engine, or a callable giving
    the current one: a change of engine commits what the old one holds and opens a connection on the new).

    ``size``: units per commit (at least 1). ``name``: how log messages name the writer.
    """

    def __init__(self, engine: Engine | Callable[[], Engine], size: int, *, name: str = "a commit group",
                 before_commit: Callable[[Connection], None] | None = None,
                 after_commit: Callable[[], None] | None = None,
                 logger: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"CommitGroup({name!r}): size must be an integer of at least 1, got {size!r}")
        if not isinstance(engine, Engine) and not callable(engine):
            raise TypeError(f"CommitGroup({name!r}): engine must be a SQLAlchemy Engine or a callable returning "
                            f"one, got {type(engine).__name__}")
        fixed = engine if isinstance(engine, Engine) else None
        self._engine: Callable[[], Engine] = (lambda: fixed) if fixed is not None else engine  # type: ignore[assignment]
        self._varies = fixed is None  # a callable: asked at each write whether the engine changed
        self.size = size
        self.name = name
        self.before_commit = before_commit
        self.after_commit = after_commit
        self.log = logger if logger is not None else log
        self.conn: Connection | None = None  # the kept connection (None: none yet, or given back)
        self._conn_engine: Engine | None = None
        self._tx: sa.RootTransaction | None = None
        self.pending: list[tuple[Write, tuple[Any, ...]]] = []  # the open transaction's writes (or rolled back)
        self.units = 0  # units written since the last commit
        self.commits = 0
        self._lock = threading.RLock()  # a checkout in another thread waits for the write under way
        self._working = False  # our own checkout (opening the connection) and COMMIT must not re-enter
        self._listener = self._on_checkout  # one bound method: event.remove needs the same object

    def __repr__(self) -> str:
        return (f"CommitGroup({self.name!r}, size={self.size}, pending={len(self.pending)}, units={self.units}, "
                f"commits={self.commits})")

    # -- a write ------------------------------------------------------------------------------
    def run(self, write: Callable[..., T], *args: Any, units: int = 1) -> T:
        """``write(conn, *args)`` in the open transaction (begun if none), counted as ``units``; committed
        when the group holds ``size`` units. A failure rolls back, commits the group's earlier writes again
        and raises."""
        with self._lock:
            conn = self.conn
            if self._tx is None or conn is None or (self._varies and self._engine() is not self._conn_engine):
                conn = self._begin()
            try:
                result = write(conn, *args)
            except BaseException:
                self._rolled_back()
                raise
            self.pending.append((write, args))
            self.units += units
            if self.units >= self.size:
                self._commit(again=True)
            return result

    def commit(self) -> None:
        """Commit the open transaction (nothing to do without one, nor without writes). Raises if that
        fails (after a rollback and one more try of the group's writes, which then stay for the next
        transaction)."""
        with self._lock:
            if self._tx is None:
                if not self.pending:
                    return
                self._begin()  # rolled back earlier and not yet written again: now
            self._commit(again=True)

    def close(self) -> None:
        """Commit what is open, give the connection back and stop watching the engine (stop, kill). The
        connection is given back even if the commit fails (which raises). Idempotent; a later write opens
        a connection again."""
        with self._lock:
            try:
                self.commit()
            finally:
                self._drop()

    def end(self) -> None:
        """:meth:`close` at the end of the writer's life, however it ended (``ctx.at_end(group.end)``: a
        stop, a crash, or a kill with no ``stop()``): the open group is committed, as every write a real
        process handled before its SIGKILL was; a commit that fails is logged with the writes it lost, not
        raised (the writer's own checks say so too)."""
        try:
            self.close()
        except Exception:
            self.log.exception("%s: the last %d write(s) could not be committed", self.name, len(self.pending))

    # -- the transaction ----------------------------------------------------------------------
    def _commit(self, *, again: bool) -> None:
        tx = self._tx
        if tx is None:
            return
        self._working = True
        try:
            conn = self.conn
            if self.before_commit is not None and conn is not None:
                self.before_commit(conn)
            tx.commit()
        except BaseException:
            self._working = False
            self._rolled_back(again=again)
            raise
        finally:
            self._working = False
        self._tx = None
        self._release()
        self.pending.clear()
        self.units = 0
        self.commits += 1
        if self.after_commit is not None:
            self.after_commit()

    def _begin(self) -> Connection:
        """The kept connection (opened if none, or broken, or on another engine) with a transaction begun:
        another group's open one on the engine committed first, the writes a rollback took run first."""
        engine = self._engine()
        conn = self.conn
        if conn is None or self._conn_engine is not engine or conn.closed or conn.invalidated:
            if conn is not None and self._tx is not None and self._conn_engine is not engine:
                with contextlib.suppress(Exception):  # an engine that changed: what it held is committed
                    self._commit(again=False)
            self._drop()
            self._check_pool(engine)
            self._working = True
            try:
                conn = self.conn = engine.connect()
            finally:
                self._working = False
            self._conn_engine = engine
            sa.event.listen(engine, "checkout", self._listener)
        if self._tx is None:
            holder = _OPEN.get(engine)
            if holder is not None and holder is not self:
                try:
                    holder.commit()
                except Exception:  # its own writer sees the failure at its next write
                    self.log.exception("%s: another group's open transaction could not be committed", self.name)
            _OPEN[engine] = self
            self._tx = conn.begin()
            if self.pending:  # a rollback took them: again, first (idempotent)
                try:
                    for write, args in self.pending:
                        write(conn, *args)
                except BaseException:
                    self._rolled_back(again=False)
                    raise
        return conn

    def _check_pool(self, engine: Engine) -> None:
        """Refuse a pool of one connection: the group keeps it checked out, so any other checkout (the one
        that would commit the group first) would wait on the pool until its timeout, not on the group."""
        pool = engine.pool
        if isinstance(pool, sa.pool.QueuePool):
            overflow = getattr(pool, "_max_overflow", -1)  # QueuePool keeps its max_overflow private
            if overflow >= 0 and pool.size() + overflow < 2:
                url = engine.url.render_as_string(hide_password=True)
                raise ValueError(
                    f"CommitGroup({self.name!r}): the engine's pool ({url}) "
                    f"holds at most {pool.size() + overflow} connection; the group keeps one checked out, so "
                    f"every other checkout would wait for the pool's timeout: give it pool_size + max_overflow >= 2")

    def _rolled_back(self, *, again: bool = True) -> None:
        """The transaction failed: roll back, give the connection back (it may be broken), and, ``again``,
        write the group's earlier calls once more, committed (they stay if that fails too)."""
        self._tx = None
        self._drop(failed=True)
        if again and self.pending:
            writes = len(self.pending)
            try:
                self._begin()
                self._commit(again=False)
                self.log.info("%s: wrote again the %d write(s) a failure rolled back", self.name, writes)
            except Exception as exc:  # kept; the caller's own error is what it raises
                self.log.warning("%s: %d earlier write(s) wait for the database: %s: %s", self.name,
                                 len(self.pending), type(exc).__name__, exc)

    def _release(self) -> None:
        engine = self._conn_engine
        if engine is not None and _OPEN.get(engine) is self:
            del _OPEN[engine]

    def _drop(self, *, failed: bool = False) -> None:
        """Give the connection back (what is not committed rolled back) and stop watching its engine. After a
        failure it is rolled back on the driver's connection, then discarded, not pooled: it may be broken,
        SQLite keeps a transaction whose COMMIT failed open (SQLAlchemy's return to the pool does not roll it
        back), and its close keeps the write lock while a failed write's cursor is still open."""
        self._release()
        conn, engine, self.conn, self._conn_engine, self._tx = self.conn, self._conn_engine, None, None, None
        if engine is not None and sa.event.contains(engine, "checkout", self._listener):
            sa.event.remove(engine, "checkout", self._listener)
        if conn is not None:
            if failed:
                with contextlib.suppress(Exception):  # first: a close waits for a failed write's open cursor
                    conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
                with contextlib.suppress(Exception):
                    conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if self._tx is None or not self.pending:  # nothing open: no lock taken (the common reader)
            return
        with self._lock:  # another thread's checkout waits for the write under way
            if self._tx is not None and self.pending and not self._working:  # another reader or writer
                try:
                    self.commit()
                except Exception:  # the reader is not failed for it: it sees what is committed
                    self.log.exception("%s: the open group could not be committed before a checkout", self.name)
