"""Order progress written with the next transaction instead of a transaction each.

A factory reports an order's progress every few seconds; each report was a transaction of its own
(two thirds of industry40's order transactions), and on SQLite a transaction's first statement and
its commit cost far more than the one-row UPDATE (each connection re-reads what another connection
wrote, takes and drops the file locks). Progress moves no order, takes or frees no capacity and queues
no message, so a report on an order already in progress waits here, latest per order, and is written
at the start of the next transaction this process runs on the database (a creation, a completion, a
status report, either replica's) or by the pass once it is ``delay`` seconds old. Each row is written
as an immediate report would be: the order still held by that factory and in progress, or else
assigned to it (then it becomes in progress); an order completed or moved meanwhile is left alone.
A transaction that rolls back puts its rows back (a newer report of the same order wins).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from forge_sched.orders import statements as st
from forge_sched.orders.plain import execute, stamp

__all__ = ["ProgressDue"]

#: order id -> (factory id, progress, clock time of the report)
Rows = dict[str, tuple[str, float, float]]


class ProgressDue:
    """The progress reports waiting for a transaction on one database (one per URL in a process)."""

    __slots__ = ("oldest", "rows", "started", "written")

    def __init__(self) -> None:
        self.rows: Rows = {}
        #: order id -> the factory a report of this process recorded it in progress for (every replica's:
        #: a replica's first report on an order it did not see start is then not a transaction)
        self.started: dict[str, str] = {}
        self.oldest = 0.0  # the clock time of the oldest waiting report (rows not empty)
        self.written = 0  # reports written by riding a transaction

    def add(self, order_id: str, factory_id: str, progress: float, at: float) -> None:
        if not self.rows:
            self.oldest = at
        self.rows[order_id] = (factory_id, progress, at)

    def due(self, now: float, delay: float) -> bool:
        return bool(self.rows) and now - self.oldest >= delay

    def ride(self, conn: Connection) -> Rows:
        """Write every waiting report in ``conn``'s transaction; returns them (see :meth:`restore`)."""
        rows, self.rows = self.rows, {}
        for order_id, (factory_id, progress, at) in rows.items():
            params: dict[str, Any] = {"id": order_id, "factory": factory_id, "progress": progress,
                                      "at": stamp(conn, datetime.fromtimestamp(at, UTC))}
            if execute(conn, st.P_PROGRESS_ON, params).rowcount <= 0:
                execute(conn, st.P_PROGRESS, params)
        self.written += len(rows)
        return rows

    def restore(self, rows: Rows) -> None:
        """The transaction that carried ``rows`` rolled back: they wait again (newer reports kept)."""
        self.written -= len(rows)
        for order_id, row in rows.items():
            self.rows.setdefault(order_id, row)
        if self.rows:
            self.oldest = min(at for _, _, at in self.rows.values())
