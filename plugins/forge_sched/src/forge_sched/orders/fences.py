"""Epoch fences kept in the database, checked and moved inside the caller's transaction.

Two kinds share the ``sched_fences`` table: ``writer:<lease>`` fences the scheduler's own
writes (a deposed leader's late transaction finds a newer epoch and writes nothing) and
``report:<lease>`` fences status reports (an MMS leader's epoch older than the newest one seen
is refused). Persisted, so a restarted PMS still refuses the old epoch.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from forge_sched.orders import statements as st
from forge_sched.orders.plain import execute, stamp

__all__ = ["advance", "newest"]


def newest(conn: Connection, name: str) -> int | None:
    """The newest epoch seen on fence ``name`` (None: never fenced)."""
    row = execute(conn, st.P_FENCE_EPOCH, {"name": name}).fetchone()
    return None if row is None else int(row[0])


def advance(conn: Connection, name: str, epoch: int, now: datetime) -> int | None:
    """Accept ``epoch`` on fence ``name`` if it is not older than the newest seen, and remember it.

    Returns None when accepted, else the newer epoch that refuses it. An equal epoch is the same
    holder speaking again and is accepted. Under SERIALIZABLE two racing callers cannot both
    pass: one of them fails to commit and is retried, then sees the other's epoch. Plain SQL
    (every leader write runs it; ``INSERT ... ON CONFLICT DO NOTHING`` is the same text on
    SQLite and PostgreSQL).
    """
    params = {"name": name, "epoch": epoch, "at": stamp(conn, now)}
    execute(conn, st.P_FENCE_INSERT, params)
    current = int(execute(conn, st.P_FENCE_EPOCH, params).fetchone()[0])
    if epoch < current:
        return current
    if epoch > current:
        execute(conn, st.P_FENCE_MOVE, params)
    return None
