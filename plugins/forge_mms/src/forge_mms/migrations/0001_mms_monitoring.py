"""mms: heartbeats (raw beats, pruned by retention), factory_status, failover_events

Revision ID: mms_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mms_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("mms",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("factory_id", sa.String(200), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("cpu", sa.Float),
        sa.Column("memory", sa.Float),
        sa.Column("errors", sa.Float, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("failed", sa.Boolean, nullable=False),
    )
    # history of one factory, and the retention's DELETE ... WHERE received_at < cutoff
    op.create_index("ix_heartbeats_factory_received", "heartbeats", ["factory_id", "received_at"])
    op.create_index("ix_heartbeats_received", "heartbeats", ["received_at"])
    op.create_table(
        "factory_status",
        sa.Column("factory_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("risk", sa.String(16)),
        sa.Column("error_rate", sa.Float),
        sa.Column("reported_status", sa.String(16)),
        sa.Column("reported_epoch", sa.BigInteger),
        sa.Column("reported_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "failover_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("factory_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("lease", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("orders_moved", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
    )
    op.create_index("ix_failover_events_factory_at", "failover_events", ["factory_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_failover_events_factory_at", table_name="failover_events")
    op.drop_table("failover_events")
    op.drop_table("factory_status")
    op.drop_index("ix_heartbeats_received", table_name="heartbeats")
    op.drop_index("ix_heartbeats_factory_received", table_name="heartbeats")
    op.drop_table("heartbeats")
