"""The read side: orders and factories as the REST API and reports show them (no transaction retry
needed: a read sees one committed state)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from forge_sched.orders.moves import HELD_TABLE
from forge_sched.orders.tables import assignments, factories, orders, to_utc

__all__ = ["factory_views", "get_order", "list_orders", "order_view"]


_HELD_COUNTS = sa.text(f"SELECT factory_id, held FROM {HELD_TABLE}")


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


def factory_views(engine: Engine, factory_id: str | None = None) -> list[dict[str, Any]]:
    """Factories (or one) with status, risk, capacity, load (orders held) and free capacity, by id."""
    with engine.connect() as conn:
        # the counts migration sched_0003's triggers keep: the same figure as counting the held
        # orders, at a cost that does not grow with the table (GET /factories is polled)
        held: dict[str, int] = {fid: int(n) for fid, n in conn.execute(_HELD_COUNTS)}
        query = sa.select(factories).order_by(factories.c.id)
        if factory_id is not None:
            query = query.where(factories.c.id == factory_id)
        rows = conn.execute(query).all()
    return [{"id": f.id, "status": f.status, "reason": f.reason, "risk": f.risk, "capacity": f.capacity,
             "load": int(held.get(f.id, 0)), "free": f.capacity - int(held.get(f.id, 0)),
             "updated_at": _iso(f.updated_at)} for f in rows]
