"""Changing and cancelling an order that has not started (what an ERP's Change / Cancel asks).

* ``change_order``: a new quantity and/or deadline for a ``pending`` or ``assigned`` order. An
  assigned one is revoked and placed again in the same transaction (the factory drops the old
  terms and is sent the new ones, or the order goes to the factory with the most free capacity);
  ``in_progress``, ``completed`` or ``cancelled``: refused (``conflict``), nothing changes.
* ``cancel_order``: a ``pending`` or ``assigned`` order becomes ``cancelled`` (an assigned one is
  revoked: the factory drops it); cancelling a cancelled order again is accepted (no effect); a
  started or completed one is refused.

An order is named by its id or by the idempotency key it was created with (an ERP knows its own
request ids, not ours). The caller (the leader) fences the write like every other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection

from forge_sched.orders.tables import orders

if TYPE_CHECKING:
    from forge_sched.orders.service import OrderService

__all__ = ["Outcome", "cancel_order", "change_order", "find_order"]

#: Statuses in which an order may still be changed or cancelled (no factory started it).
NOT_STARTED = ("pending", "assigned")


@dataclass(frozen=True)
class Outcome:
    """What a change or cancellation did: ``ok`` (applied, or nothing to do), ``not_found``,
    ``conflict`` (started, completed or cancelled: unchanged); ``row`` is the order after it."""

    code: Literal["ok", "not_found", "conflict"]
    detail: str
    row: Any = None


def find_order(conn: Connection, *, order_id: str | None = None, key: str | None = None) -> Any:
    """The ``orders`` row named by id or by idempotency key, or None."""
    if order_id is not None:
        return conn.execute(sa.select(orders).where(orders.c.id == order_id)).first()
    if key is not None:
        return conn.execute(sa.select(orders).where(orders.c.idempotency_key == key)).first()
    return None


def _reread(conn: Connection, order_id: str) -> Any:
    return conn.execute(sa.select(orders).where(orders.c.id == order_id)).one()


async def change_order(service: OrderService, *, order_id: str | None = None, key: str | None = None,
                       quantity: int | None = None, deadline: datetime | None = None) -> Outcome:
    """New ``quantity`` and/or ``deadline`` for an order no factory has started (see the module)."""
    def work(conn: Connection) -> Outcome:
        w = service._writer(conn)
        row = find_order(conn, order_id=order_id, key=key)
        if row is None:
            return Outcome("not_found", f"no order {order_id or key!r}")
        if row.status not in NOT_STARTED:
            return Outcome("conflict", f"order {row.id} is {row.status}: not changed", row)
        values: dict[str, Any] = {"updated_at": w.now}
        if quantity is not None:
            values["quantity"] = quantity
        if deadline is not None:
            values["deadline"] = deadline.astimezone(UTC)
        if row.status == "assigned":  # the holder drops the old terms; placed again with the new ones
            w.revoke(row, "changed: quantity/deadline", to_pending=True)
        conn.execute(orders.update().where(orders.c.id == row.id).values(**values))
        if row.status == "assigned":
            service._assign_pending(w)
        return Outcome("ok", f"order {row.id} changed", _reread(conn, row.id))

    outcome = await service.tx.run(work)
    _count(service, "changed" if outcome.code == "ok" else "change_refused")
    return outcome


async def cancel_order(service: OrderService, *, order_id: str | None = None, key: str | None = None,
                       reason: str = "cancelled") -> Outcome:
    """Cancel an order no factory has started (see the module)."""
    def work(conn: Connection) -> Outcome:
        w = service._writer(conn)
        row = find_order(conn, order_id=order_id, key=key)
        if row is None:
            return Outcome("not_found", f"no order {order_id or key!r}")
        if row.status == "cancelled":
            return Outcome("ok", f"order {row.id} was cancelled already", row)
        if row.status not in NOT_STARTED:
            return Outcome("conflict", f"order {row.id} is {row.status}: not cancelled", row)
        if row.status == "assigned":
            w.revoke(row, reason[:200], to_pending=False)
        conn.execute(orders.update().where(orders.c.id == row.id).values(
            status="cancelled", factory_id=None, progress=0.0, updated_at=w.now))
        return Outcome("ok", f"order {row.id} cancelled", _reread(conn, row.id))

    outcome = await service.tx.run(work)
    _count(service, "cancelled" if outcome.code == "ok" else "cancel_refused")
    return outcome


def _count(service: OrderService, what: str) -> None:
    service.stats[what] = service.stats.get(what, 0) + 1
