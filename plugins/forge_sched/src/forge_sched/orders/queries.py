"""The read side: orders and factories as the REST API and reports show them (no transaction retry
needed: a read sees one committed state)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from forge_sched.orders.moves import HELD_TABLE
from forge_sched.orders.plain import Plain, execute, stamp_reader
from forge_sched.orders.tables import assignments, factories, orders, to_utc

__all__ = ["factory_views", "get_order", "list_orders", "order_view"]

# Every factory with the count of orders it holds (migration sched_0003's triggers keep the counts: the
# same figure as counting the held orders, at a cost that does not grow with the table). One statement,
# so one snapshot, in plain SQL: the MMS asks it on every DOWN and before a drain (~2,200 times in
# industry40's simulated day), and through SQLAlchemy's execution path a read cost ~5x SQLite running it.
_VIEWS = (f"SELECT f.id, f.status, f.reason, f.risk, f.capacity, coalesce(h.held, 0), f.updated_at "
          f"FROM {factories.name} f LEFT JOIN {HELD_TABLE} h ON h.factory_id = f.id")
_ALL_VIEWS = Plain(f"{_VIEWS} ORDER BY f.id")
_ONE_VIEW = Plain(f"{_VIEWS} WHERE f.id = :id")


def _iso(value: Any) -> str | None:
    aware = to_utc(value)
    return None if aware is None else aware.isoformat().replace("+00:00", "Z")


def order_view(row: Any) -> dict[str, Any]:
    """An ``orders`` row as the API shows it."""
    return {"id": row.id, "product_type": row.product_type, "quantity": row.quantity,
            "deadline": _iso(row.deadline), "status": row.status, "factory_id": row.factory_id,
            "progress": row.progress, "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at),
            "completed_at": _iso(row.completed_at), "completed_by": row.completed_by}


def list_orders(engine: Engine, *, status: str | None = None, factory_id: str | None = None,
                limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Orders, oldest first, filtered by status and by the factory holding them (completed ones: that
    completed them)."""
    query = sa.select(orders).order_by(orders.c.created_at, orders.c.id).limit(limit).offset(offset)
    if status is not None:
        query = query.where(orders.c.status == status)
    if factory_id is not None:
        query = query.where(sa.or_(orders.c.factory_id == factory_id, orders.c.completed_by == factory_id))
    with engine.connect() as conn:
        return [order_view(row) for row in conn.execute(query)]


def get_order(engine: Engine, order_id: str) -> dict[str, Any] | None:
    """One order with its assignment history, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
        if row is None:
            return None
        history = conn.execute(sa.select(assignments).where(assignments.c.order_id == order_id)
                               .order_by(assignments.c.id)).all()
    view = order_view(row)
    view["assignments"] = [{"factory_id": a.factory_id, "assigned_at": _iso(a.assigned_at), "epoch": a.epoch,
                            "revoked_at": _iso(a.revoked_at), "revoke_reason": a.revoke_reason} for a in history]
    return view


def factory_views(engine: Engine, factory_id: str | None = None, *,
                  connect: Callable[[], AbstractContextManager[Connection]] | None = None) -> list[dict[str, Any]]:
    """Factories (or one) with status, risk, capacity, load (orders held) and free capacity, by id.
    ``connect``: where the connection comes from (a :class:`~forge_sched.orders.transactions.Transactor`'s
    ``connect``, its kept connection under a virtual clock), else ``engine.connect``."""
    with (connect or engine.connect)() as conn:
        process = stamp_reader(conn)
        rows = _read(conn, _ALL_VIEWS, {}) if factory_id is None else _read(conn, _ONE_VIEW, {"id": factory_id})
    return [{"id": fid, "status": status, "reason": reason, "risk": risk, "capacity": capacity, "load": int(held),
             "free": capacity - int(held), "updated_at": _iso(process(updated) if process is not None else updated)}
            for fid, status, reason, risk, capacity, held, updated in rows]


def _read(conn: Connection, statement: Plain, params: dict[str, Any]) -> list[Any]:
    """``statement``'s rows, read on ``conn``'s driver connection, whose transaction (psycopg opens one at
    the read) is then rolled back: a read has nothing to commit, and a SERIALIZABLE transaction's commit
    can fail where its rollback cannot. A kept connection is left as a checkin leaves it."""
    if conn.in_transaction():  # SQLAlchemy's own: this read would run inside it
        raise sa.exc.InvalidRequestError("factory_views: a transaction is already begun on this connection")
    try:
        return list(execute(conn, statement, params).fetchall())
    finally:
        with contextlib.suppress(conn.dialect.loaded_dbapi.Error):  # a broken connection: connect drops it
            conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
