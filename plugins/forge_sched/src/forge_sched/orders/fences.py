"""Epoch fences kept in the database, checked and moved inside the caller's transaction.

Two kinds share the ``sched_fences`` table: ``writer:<lease>`` fences the scheduler's own
writes (a deposed leader's late transaction finds a newer epoch and writes nothing) and
``report:<lease>`` fences status reports (an MMS leader's epoch older than the newest one seen
is refused). Persisted, so a restarted PMS still refuses the old epoch.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from forge_sched.orders.tables import fences

__all__ = ["advance", "newest"]

# Built once (every fenced write runs them): the insert per dialect, the read, the move.
_INSERT = {name: insert(fences).values(name=sa.bindparam("b_name"), epoch=sa.bindparam("b_epoch"),
                                       updated_at=sa.bindparam("b_at", type_=fences.c.updated_at.type))
           .on_conflict_do_nothing() for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}
_EPOCH = sa.select(fences.c.epoch).where(fences.c.name == sa.bindparam("b_name"))
_MOVE = fences.update().where(fences.c.name == sa.bindparam("b_name")).values(
    epoch=sa.bindparam("b_epoch", type_=fences.c.epoch.type), updated_at=sa.bindparam("b_at", type_=fences.c.updated_at.type))


def newest(conn: Connection, name: str) -> int | None:
    """The newest epoch seen on fence ``name`` (None: never fenced)."""
    return conn.execute(_EPOCH, {"b_name": name}).scalar_one_or_none()


def advance(conn: Connection, name: str, epoch: int, now: datetime) -> int | None:
    """Accept ``epoch`` on fence ``name`` if it is not older than the newest seen, and remember it.

    Returns None when accepted, else the newer epoch that refuses it. An equal epoch is the same
    holder speaking again and is accepted. Under SERIALIZABLE two racing callers cannot both
    pass: one of them fails to commit and is retried, then sees the other's epoch.
    """
    params = {"b_name": name, "b_epoch": epoch, "b_at": now}
    conn.execute(_INSERT["postgresql" if conn.dialect.name == "postgresql" else "sqlite"], params)
    current = conn.execute(_EPOCH, params).scalar_one()
    if epoch < current:
        return int(current)
    if epoch > current:
        conn.execute(_MOVE, params)
    return None
