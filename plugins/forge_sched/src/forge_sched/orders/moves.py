"""Assignment changes inside one transaction: read the loads, assign, revoke, move.

Every change also queues its message in the outbox (``sched.order_assigned`` to the new holder,
``sched.order_revoked`` to the old one), so what factories hear is exactly what committed.

A pass that changes many orders (a DOWN factory's orders moved, pending orders placed, a
rebalance) applies them with :meth:`Writer.apply`: one ``executemany`` per kind of row (revoked
assignments, pending orders, assigned orders, new assignments, outbox messages) instead of three
to five statements per order, each paying SQLAlchemy's fixed cost (the DOWN pass of a factory
holding 10 orders, its relay included, went from 61 statements and ~16 ms of CPU to 15 and ~5 ms).
The writes and the messages are the same, in the same order, in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection

from forge_sched.orders import outbox
from forge_sched.orders.plain import Plain, execute, execute_many, stamp, stamp_reader
from forge_sched.orders.planner import FactoryLoad
from forge_sched.orders.tables import UNFINISHED, assignments, factories, orders, to_utc

__all__ = ["ASSIGNED", "HELD_TABLE", "REVOKED", "Change", "Held", "NewRow", "Topics", "Writer", "iso"]

ASSIGNED = "sched.order_assigned"
REVOKED = "sched.order_revoked"

# Plain SQL (forge_sched.orders.plain), executed with a list of parameter sets.
_REVOKE = Plain(f"UPDATE {assignments.name} SET revoked_at = :at, revoke_reason = :reason "
                "WHERE order_id = :order AND revoked_at IS NULL")
_TO_PENDING = Plain(f"UPDATE {orders.name} SET status = 'pending', factory_id = NULL, progress = 0.0, "
                    "updated_at = :at WHERE id = :order")
_ASSIGN = Plain(f"UPDATE {orders.name} SET status = 'assigned', factory_id = :factory, progress = 0.0, "
                "updated_at = :at WHERE id = :order")
_HOLD = Plain(f"INSERT INTO {assignments.name} (order_id, factory_id, assigned_at, epoch) "
              "VALUES (:order, :factory, :at, :epoch)")
# The reads of every pass, built once too; the loads (every placement reads them) in plain SQL.
#: The held counts are kept by the database (migration sched_0003's triggers on orders, in the
#: transaction of each change), so reading them costs the same however many orders are held.
HELD_TABLE = "sched_factory_held"
P_LOADS = Plain(f"SELECT f.id, f.capacity, f.status, coalesce(h.held, 0) FROM {factories.name} f "
                f"LEFT JOIN {HELD_TABLE} h ON h.factory_id = f.id")
#: The orders a pass moves or places, in plain SQL too (through SQLAlchemy's execution path, result
#: processing included, each read cost several times SQLite running it): the columns a change reads.
_ROW = "id, product_type, quantity, deadline, factory_id"
_PENDING = Plain(f"SELECT {_ROW} FROM {orders.name} WHERE status = 'pending' ORDER BY deadline, created_at, id")


@functools.cache
def _held(statuses: int) -> Plain:
    """The orders of ``factory`` in ``s0`` ... (``statuses`` of them), latest deadline first."""
    wanted = ", ".join(f":s{i}" for i in range(statuses))
    return Plain(f"SELECT {_ROW} FROM {orders.name} WHERE factory_id = :factory AND status IN ({wanted}) "
                 "ORDER BY deadline DESC, id DESC")


class OrderRow(NamedTuple):
    """An order as a change reads it."""

    id: str
    product_type: str
    quantity: int
    deadline: datetime
    factory_id: str | None


def _rows(conn: Connection, statement: Plain, params: dict[str, Any] | None = None) -> list[OrderRow]:
    """``statement``'s rows, the deadline as SQLAlchemy's ``DateTime`` reads it on ``conn``'s dialect."""
    process = stamp_reader(conn)
    rows = execute(conn, statement, params).fetchall()
    if process is None:
        return [OrderRow(*row) for row in rows]
    return [OrderRow(oid, product, quantity, process(deadline), holder)
            for oid, product, quantity, deadline, holder in rows]


def iso(value: datetime | None) -> str | None:
    aware = to_utc(value)
    return None if aware is None else aware.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Topics:
    """Topic templates of the messages to factories (``{factory_id}`` is filled in)."""

    assigned: str
    revoked: str


@dataclass(frozen=True)
class Change:
    """One order's change: taken from its holder (if it has one, with ``reason``) and given to
    ``to``; ``to=None`` only revokes it, leaving it pending if ``to_pending``."""

    order: Any
    to: str | None
    reason: str = ""
    to_pending: bool = False


class NewRow(NamedTuple):
    """A new order's row as :func:`~forge_sched.orders.queries.order_view` and the writer read it."""

    id: str
    product_type: str
    quantity: int
    deadline: datetime
    status: str
    factory_id: str | None
    progress: float
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = None


class Held(NamedTuple):
    """An order as a revoke reads it (its id and holder)."""

    id: str
    factory_id: str


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
        return {fid: FactoryLoad(fid, capacity, status, int(held))
                for fid, capacity, status, held in execute(self.conn, P_LOADS).fetchall()}

    def held(self, factory_id: str, statuses: tuple[str, ...] = UNFINISHED) -> list[Any]:
        """The orders ``factory_id`` holds in ``statuses``, latest deadline first (they move first)."""
        params: dict[str, Any] = {f"s{i}": status for i, status in enumerate(statuses)}
        params["factory"] = factory_id
        return _rows(self.conn, _held(len(statuses)), params)

    def pending(self) -> list[Any]:
        """Pending orders, earliest deadline first."""
        return _rows(self.conn, _PENDING)

    def hold(self, order: NewRow, to: str) -> dict[str, Any]:
        """A new order inserted already assigned to ``to``: its assignment recorded now; returns its
        ``sched.order_assigned`` message, for the caller to queue with its own in one statement."""
        execute(self.conn, _HOLD, {"order": order.id, "factory": to, "at": stamp(self.conn, self.now),
                                   "epoch": self.epoch})
        return self._assigned(order, to)

    def _assigned(self, order: Any, to: str) -> dict[str, Any]:
        """The ``sched.order_assigned`` message of ``order`` given to ``to``, as an outbox row."""
        payload: dict[str, Any] = {"orderId": order.id, "factoryId": to, "productType": order.product_type,
                                   "quantity": order.quantity, "deadline": iso(order.deadline)}
        if self.epoch is not None:
            payload["epoch"] = self.epoch
        return outbox.message(self.topics.assigned.format(factory_id=to), ASSIGNED, payload, order.id)

    def revoke(self, order: Any, reason: str, *, to_pending: bool) -> None:
        """Take ``order`` from its factory (which is told to drop it); ``to_pending`` leaves it pending."""
        self.apply([Change(order, None, reason, to_pending)])

    def move(self, order: Any, to: str, reason: str) -> None:
        """Revoke from the current holder and assign to ``to`` (one order, one holder at every instant)."""
        self.apply([Change(order, to, reason)])

    def apply(self, changes: Sequence[Change], *, revoke_held: bool = True) -> None:
        """Apply ``changes`` now, in at most five statements whatever their number: revoke the
        current assignments (``revoke_held``: of orders that have a holder), send the revoked ones
        that go nowhere back to pending, assign the others, record their new assignments, and queue
        the messages -- per order its ``sched.order_revoked`` before its ``sched.order_assigned``,
        orders in the given order. Revokes come before the new assignments, so the partial unique
        index (one active assignment per order) holds at every statement."""
        at = stamp(self.conn, self.now)
        revoke: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        assign: list[dict[str, Any]] = []
        hold: list[dict[str, Any]] = []
        queue: list[dict[str, Any]] = []
        for change in changes:
            order, to = change.order, change.to
            if revoke_held and order.factory_id is not None:
                revoke.append({"order": order.id, "at": at, "reason": change.reason[:200]})
                queue.append(outbox.message(self.topics.revoked.format(factory_id=order.factory_id), REVOKED, {
                    "orderId": order.id, "factoryId": order.factory_id, "reason": change.reason}, order.id))
            if to is None:
                if change.to_pending:
                    pending.append({"order": order.id, "at": at})
                continue
            assign.append({"order": order.id, "factory": to, "at": at})
            hold.append({"order": order.id, "factory": to, "at": at, "epoch": self.epoch})
            queue.append(self._assigned(order, to))
            if revoke_held and order.factory_id is not None:
                self.moved += 1
        for statement, rows in ((_REVOKE, revoke), (_TO_PENDING, pending), (_ASSIGN, assign), (_HOLD, hold)):
            execute_many(self.conn, statement, rows)
        outbox.put_many(self.conn, queue)
