"""The order scheduler's tables as SQLAlchemy Core sees them (created by migration ``sched_0001``).

``orders.factory_id`` is the current holder (NULL while pending or once completed);
``factory_assignments`` is the history, at most one row per order without ``revoked_at`` (a
partial unique index: the database itself refuses an order held by two factories).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = ["ACTIVE", "FACTORY_STATUSES", "ORDER_STATUSES", "UNFINISHED", "assignments", "factories", "fences",
           "metadata", "orders", "outbox", "to_utc"]

#: Order life: pending (no factory) -> assigned (held, not started) -> in_progress -> completed;
#: pending or assigned -> cancelled (migration sched_0002).
ORDER_STATUSES = ("pending", "assigned", "in_progress", "completed", "cancelled")
#: Statuses of an order a factory holds.
UNFINISHED = ("assigned", "in_progress")
ACTIVE = UNFINISHED
FACTORY_STATUSES = ("UP", "DEGRADED", "DOWN")

metadata = sa.MetaData()

factories = sa.Table(
    "factories", metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("risk", sa.String(8), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("product_type", sa.String(100), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("factory_id", sa.String(100), sa.ForeignKey("factories.id"), nullable=True),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("completed_by", sa.String(100), nullable=True),
    sa.Column("completions", sa.Integer, nullable=False),
)

assignments = sa.Table(
    "factory_assignments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("factory_id", sa.String(100), sa.ForeignKey("factories.id"), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoke_reason", sa.String(200), nullable=True),
)
sa.Index("uq_factory_assignments_active", assignments.c.order_id, unique=True,
         sqlite_where=assignments.c.revoked_at.is_(None), postgresql_where=assignments.c.revoked_at.is_(None))

#: Newest epoch per fence: ``writer:<lease>`` (the scheduler's own leadership) and
#: ``report:<lease>`` (status reporters such as the MMS leader).
fences = sa.Table(
    "sched_fences", metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

#: Messages written in the transaction that decided them, published after commit.
outbox = sa.Table(
    "sched_outbox", metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
)


def to_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
