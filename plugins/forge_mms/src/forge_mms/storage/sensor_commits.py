"""The sensor store's inline transactions (a virtual clock): one connection kept, several batches a commit.

Under a virtual clock the store runs inline, one call at a time, on one connection kept between calls (a
pool checkout, ping and ``Connection`` per batch of one reading cost more than its statements). A
transaction per batch of one reading then cost ~30 % of a simulated day, most of it the COMMIT and the
BEGIN around three small statements. So the store's writes share a transaction: each write still runs at
its batch, in the open transaction (a redelivered reading is refused by ``ON CONFLICT DO NOTHING`` at once,
and what the write returns is what it inserted), and the transaction is committed

* every ``size`` readings (``virtual_commit_readings``),
* before any other connection of the engine is checked out (a view, a check, a warm-up read, a test,
  the next life's load): no reader through the engine ever finds a handled reading missing,
* before another group on the same engine begins (two processors in one process: SQLite lets one
  transaction write at a time, and the other group would wait for a commit that never comes while it
  waits),
* when the processor stops, and when it is killed (a simulated SIGKILL: :meth:`CommitGroup.guard`),

so what a reader and a kill see is what a commit per batch gives. ``size`` 1 is a commit per call, as
in real time (where the store runs each batch's transaction in a worker thread and does not use this).

A failing write rolls the open transaction back, the group's earlier writes with it; their calls are
kept here and run again (in a new transaction, committed) before the error is raised, so a rollback never
takes a reading the processor already handled. If that fails too (the database is down) they stay, and run
first in the next transaction. Every write is idempotent, so running one again stores nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

__all__ = ["CommitGroup"]

#: per engine, the group whose transaction is open on it (one at a time)
_OPEN: weakref.WeakKeyDictionary[Engine, CommitGroup] = weakref.WeakKeyDictionary()

log = logging.getLogger(__name__)

Write = Callable[..., Any]  # (conn, *args) -> result


class CommitGroup:
    def __init__(self, engine: Callable[[], Engine], size: int) -> None:
        self._engine = engine
        self.size = size
        self.conn: Connection | None = None
        self._conn_engine: Engine | None = None
        self._tx: sa.RootTransaction | None = None
        self.pending: list[tuple[Write, tuple[Any, ...]]] = []  # the open transaction's writes (or rolled back)
        self.readings = 0  # readings written since the last commit
        self.commits = 0
        self._working = False  # our own checkout (opening the connection) must not commit
        self._listener = self._on_checkout  # one bound method: event.remove needs the same object

    # -- a write ------------------------------------------------------------------------------
    def run(self, write: Write, *args: Any, readings: int = 0) -> Any:
        """``write(conn, *args)`` in the open transaction (begun if none); committed when the group is full.
        A failure rolls back, commits the group's earlier writes again and raises."""
        conn = self._begin()
        try:
            result = write(conn, *args)
        except BaseException:
            self._rolled_back()
            raise
        self.pending.append((write, args))
        self.readings += readings
        if self.readings >= self.size:
            self.commit()
        return result

    def commit(self) -> None:
        """Commit the open transaction (nothing to do without one). Raises if that fails (after a rollback
        and one more try of the group's writes, which then stay for the next transaction)."""
        tx = self._tx
        if tx is None:
            if self.pending:  # rolled back earlier and not yet written again
                self._begin()
                self.commit()
            return
        self._working = True
        try:
            tx.commit()
        except BaseException:
            self._working = False
            self._rolled_back()
            raise
        finally:
            self._working = False
        self._tx = None
        self._release()
        self.pending.clear()
        self.readings = 0
        self.commits += 1

    def close(self) -> None:
        """Commit what is open, give the connection back and stop watching the engine (stop, kill). The
        connection is given back even if the commit fails (which raises)."""
        try:
            self.commit()
        finally:
            self._drop()

    async def guard(self) -> None:
        """Waits for nothing: its cancellation (the processor killed, when no ``stop()`` is called, or
        stopped) commits the open group, as every batch a real process handled before its SIGKILL was
        committed."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            try:
                self.close()
            except Exception:  # the plant's "every reading stored once" check says so too
                log.exception("the sensor store's last %d write(s) could not be committed", len(self.pending))

    # -- the connection and its transaction ---------------------------------------------------
    def _begin(self) -> Connection:
        engine = self._engine()
        conn = self.conn
        if conn is None or self._conn_engine is not engine or conn.closed or conn.invalidated:
            if conn is not None:
                with contextlib.suppress(Exception):  # an engine that changed: what it held is committed
                    self.commit()
            self._drop()
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
                    log.exception("another sensor store's open group could not be committed")
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

    def _rolled_back(self, *, again: bool = True) -> None:
        """The transaction failed: roll back, give the connection back (it may be broken), and, ``again``,
        write the group's earlier calls once more, committed (they stay if that fails too)."""
        self._tx = None
        self._drop()
        if again and self.pending:
            try:
                self._begin()
                self.commit()
                log.info("the sensor store wrote again the writes a failed one rolled back")
            except Exception as exc:  # noqa: BLE001 - kept; the caller's own error is what it raises
                log.warning("the sensor store's %d earlier write(s) wait for the database: %s: %s",
                            len(self.pending), type(exc).__name__, exc)

    def _release(self) -> None:
        engine = self._conn_engine
        if engine is not None and _OPEN.get(engine) is self:
            del _OPEN[engine]

    def _drop(self) -> None:
        self._release()
        conn, engine, self.conn, self._conn_engine, self._tx = self.conn, self._conn_engine, None, None, None
        if engine is not None and sa.event.contains(engine, "checkout", self._listener):
            sa.event.remove(engine, "checkout", self._listener)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # rolls back what is not committed

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if self._tx is not None and self.pending and not self._working:  # another reader or writer
            try:
                self.commit()
            except Exception:  # the reader is not failed for it: it sees what is committed
                log.exception("the sensor store's open group could not be committed before a checkout")
