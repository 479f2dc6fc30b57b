"""sched: orders, factories, factory_assignments (history), sched_fences, sched_outbox

Revision ID: sched_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sched_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sched",)
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "factories",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("risk", sa.String(8), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("capacity >= 0", name="ck_factories_capacity"),
        sa.CheckConstraint("status IN ('UP', 'DEGRADED', 'DOWN')", name="ck_factories_status"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("product_type", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("deadline", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("factory_id", sa.String(100), sa.ForeignKey("factories.id"), nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("response", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("completed_at", TZ, nullable=True),
        sa.Column("completed_by", sa.String(100), nullable=True),
        sa.Column("completions", sa.Integer, nullable=False),
        sa.UniqueConstraint("idempotency_key", name="uq_orders_idempotency_key"),
        sa.CheckConstraint("quantity > 0", name="ck_orders_quantity"),
        sa.CheckConstraint("status IN ('pending', 'assigned', 'in_progress', 'completed')", name="ck_orders_status"),
        # a held order names its factory, a pending or completed one none
        sa.CheckConstraint("(status IN ('assigned', 'in_progress')) = (factory_id IS NOT NULL)",
                           name="ck_orders_holder"),
    )
    op.create_index("ix_orders_status", "orders", ["status", "deadline"])
    op.create_index("ix_orders_factory", "orders", ["factory_id"])
    op.create_table(
        "factory_assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(64), sa.ForeignKey("orders.id"), nullable=False),
        sa.Column("factory_id", sa.String(100), sa.ForeignKey("factories.id"), nullable=False),
        sa.Column("assigned_at", TZ, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("revoke_reason", sa.String(200), nullable=True),
    )
    # The database refuses an order held by two factories at once.
    op.create_index("uq_factory_assignments_active", "factory_assignments", ["order_id"], unique=True,
                    sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_index("ix_factory_assignments_order", "factory_assignments", ["order_id", "factory_id"])
    op.create_table(
        "sched_fences",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "sched_outbox",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sched_outbox")
    op.drop_table("sched_fences")
    op.drop_index("ix_factory_assignments_order", table_name="factory_assignments")
    op.drop_index("uq_factory_assignments_active", table_name="factory_assignments")
    op.drop_table("factory_assignments")
    op.drop_index("ix_orders_factory", table_name="orders")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_table("orders")
    op.drop_table("factories")
