"""Production's beats, several to a transaction, under a virtual clock only.

A beat's transaction cost ~70 µs, a third of it the COMMIT and much of the rest the insert that
opens the transaction (a simulated day has ~45,000 bladed beats). Under a virtual clock each beat's
insert still runs at its beat, on production's one connection (so a redelivered heartbeat is still
refused by the unique index at once); its stock updates are merged (the last level of each batch)
and run just before the commit; the transaction is committed every ``size`` beats, and before
anything else could look: when any other connection of the engine is checked out (a report, a
check, a test, the next life's load), when production stops, and when it is killed (a simulated
SIGKILL). So no reader ever finds the database without a beat production handled, which is what a
commit per beat guarantees, and a kill keeps what a real one keeps (every handled beat). In real
time production does not use this: each beat is its own transaction.

A failed beat rolls the open transaction back, the group's earlier beats with it; their statements
are kept here and run again (:meth:`CommitGroup.recommit`), so a rollback never takes a beat that
production's memory already counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa


class CommitGroup:
    def __init__(
        self,
        engine: sa.Engine,
        size: int,
        connection: Callable[[], Any],
        open_connection: Callable[[], Any],
        sql_insert: str,
        sql_update: str,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.engine = engine
        self.size = size
        self.connection = connection  # production's connection, opened if needed
        self.open_connection = open_connection  # the connection holding the open transaction, or None
        self.sql_insert, self.sql_update = sql_insert, sql_update
        self.log = log
        self.pending: list[list[tuple[Any, ...]]] = []  # each beat's insert rows, executed
        self.updates: dict[int, int] = {}  # batch id -> in_stock, not executed yet
        self.commits = 0
        self._working = False  # our own checkouts (a new connection for a recommit) must not re-enter
        self._listener = self._on_checkout  # one bound method: event.remove needs the same object
        sa.event.listen(engine, "checkout", self._listener)
        self._listening = True

    def add(self, rows: list[tuple[Any, ...]], changed: list[tuple[int, int]]) -> None:
        """A beat's inserted ``rows`` (executed) and its ``changed`` (in_stock, id) updates (not yet)."""
        self.pending.append(rows)
        for units, batch_id in changed:
            self.updates[batch_id] = units
        if len(self.pending) >= self.size:
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        raw = self.open_connection()
        if raw is None:  # the connection was dropped with the transaction: the statements go in again
            self.recommit()
            return
        try:
            self._execute(raw, inserts=False)  # the inserts ran at their beats, in this transaction
        except BaseException:
            self.recommit()  # rolled back: the beats' inserts went with it

    def recommit(self) -> None:
        """After a rollback: the group's statements again, committed. Raises if that fails too (the
        statements stay, for the next commit)."""
        if not self.pending:
            return
        beats = len(self.pending)
        self._working = True  # opening production's connection is a checkout: our listener must not re-enter
        try:
            raw = self.connection()
        finally:
            self._working = False
        self._execute(raw, inserts=True)
        self.log.info("committed again the %d beat(s) of a group a failed beat rolled back", beats)

    def _execute(self, raw: Any, *, inserts: bool) -> None:
        """Run the merged stock updates (and the beats' inserts when a rollback took them), commit, and
        forget them; on failure roll back and raise, the statements kept."""
        self._working = True
        try:
            cursor = raw.cursor()
            if inserts:
                for rows in self.pending:
                    cursor.executemany(self.sql_insert, rows)
            if self.updates:
                cursor.executemany(self.sql_update, [(units, batch_id) for batch_id, units in self.updates.items()])
            cursor.close()
            raw.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                raw.rollback()
            raise
        finally:
            self._working = False
        self.pending.clear()
        self.updates.clear()
        self.commits += 1

    def close(self) -> None:
        """Commit what is open and stop watching the engine (stop, kill). Idempotent."""
        if self._listening:
            sa.event.remove(self.engine, "checkout", self._listener)
            self._listening = False
        self.commit()

    async def guard(self) -> None:
        """Waits for nothing: its cancellation — production killed (no ``stop()`` is called then) or
        stopped — commits the open group, as every beat a real process handled before its SIGKILL
        was committed."""
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            try:
                self.close()
            except Exception:  # the end-of-run check "every produced batch is in the database" fails too
                self.log.exception("the last %d beat(s) could not be committed at the kill", len(self.pending))

    def _on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if self.pending and not self._working:  # another reader or writer: it sees every handled beat
            self.commit()
