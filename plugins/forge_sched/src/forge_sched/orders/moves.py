"""Assignment changes inside one transaction: read the loads, assign, revoke, move.

Every change also queues its message in the outbox (``sched.order_assigned`` to the new holder,
``sched.order_revoked`` to the old one), so what factories hear is exactly what committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from forge_sched.orders import outbox
from forge_sched.orders.planner import FactoryLoad
from forge_sched.orders.tables import UNFINISHED, assignments, factories, orders, to_utc

__all__ = ["ASSIGNED", "REVOKED", "Topics", "Writer", "iso"]

ASSIGNED = "sched.order_assigned"
REVOKED = "sched.order_revoked"


def iso(value: datetime | None) -> str | None:
    aware = to_utc(value)
    return None if aware is None else aware.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Topics:
    """Topic templates of the messages to factories (``{factory_id}`` is filled in)."""

    assigned: str
    revoked: str


class Writer:
    """Assignment changes on one connection (one transaction), stamped ``now`` and ``epoch``."""

    def __init__(self, conn: Connection, topics: Topics, now: datetime, epoch: int | None) -> None:
        self.conn = conn
        self.topics = topics
        self.now = now
        self.epoch = epoch
        self.moved = 0

    def loads(self) -> dict[str, FactoryLoad]:
        """Every factory with the orders it holds now."""
        held: dict[str, int] = {fid: int(n) for fid, n in self.conn.execute(
            sa.select(orders.c.factory_id, sa.func.count()).where(orders.c.status.in_(UNFINISHED))
            .group_by(orders.c.factory_id))}
        return {row.id: FactoryLoad(row.id, row.capacity, row.status, int(held.get(row.id, 0)))
                for row in self.conn.execute(sa.select(factories.c.id, factories.c.capacity, factories.c.status))}

    def held(self, factory_id: str, statuses: tuple[str, ...] = UNFINISHED) -> list[Any]:
        """The orders ``factory_id`` holds in ``statuses``, latest deadline first (they move first)."""
        return list(self.conn.execute(
            sa.select(orders).where(orders.c.factory_id == factory_id, orders.c.status.in_(statuses))
            .order_by(orders.c.deadline.desc(), orders.c.id.desc())))

    def pending(self) -> list[Any]:
        """Pending orders, earliest deadline first."""
        return list(self.conn.execute(
            sa.select(orders).where(orders.c.status == "pending").order_by(orders.c.deadline, orders.c.created_at,
                                                                            orders.c.id)))

    def assign(self, order: Any, factory_id: str) -> None:
        """Give a pending (or just revoked) order to ``factory_id``."""
        self.conn.execute(orders.update().where(orders.c.id == order.id).values(
            status="assigned", factory_id=factory_id, progress=0.0, updated_at=self.now))
        self.conn.execute(assignments.insert().values(order_id=order.id, factory_id=factory_id, assigned_at=self.now,
                                                      epoch=self.epoch))
        payload: dict[str, Any] = {"orderId": order.id, "factoryId": factory_id, "productType": order.product_type,
                                   "quantity": order.quantity, "deadline": iso(order.deadline)}
        if self.epoch is not None:
            payload["epoch"] = self.epoch
        outbox.put(self.conn, self.topics.assigned.format(factory_id=factory_id), ASSIGNED, payload, key=order.id)

    def revoke(self, order: Any, reason: str, *, to_pending: bool) -> None:
        """Take ``order`` from its factory (which is told to drop it); ``to_pending`` leaves it pending."""
        factory_id = order.factory_id
        self.conn.execute(assignments.update().where(
            assignments.c.order_id == order.id, assignments.c.revoked_at.is_(None)).values(
            revoked_at=self.now, revoke_reason=reason[:200]))
        if to_pending:
            self.conn.execute(orders.update().where(orders.c.id == order.id).values(
                status="pending", factory_id=None, progress=0.0, updated_at=self.now))
        outbox.put(self.conn, self.topics.revoked.format(factory_id=factory_id), REVOKED,
                   {"orderId": order.id, "factoryId": factory_id, "reason": reason}, key=order.id)

    def move(self, order: Any, to: str, reason: str) -> None:
        """Revoke from the current holder and assign to ``to`` (one order, one holder at every instant)."""
        self.revoke(order, reason, to_pending=False)
        self.assign(order, to)
        self.moved += 1
