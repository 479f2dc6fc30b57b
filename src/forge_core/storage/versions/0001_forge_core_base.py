"""forge core: dead letters and small key/value state

Revision ID: forge_core_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "forge_core_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("forge_core",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The runtime's dead-letter channel: every message that failed validation or handling.
    op.create_table(
        "forge_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(512), nullable=False),
        sa.Column("component", sa.String(128), nullable=True),
        sa.Column("message_type", sa.String(256), nullable=True),
        sa.Column("errors", sa.Text, nullable=False),  # JSON
        sa.Column("headers", sa.Text, nullable=False),  # JSON
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_forge_dead_letters_received_at", "forge_dead_letters", ["received_at"])
    # Small persisted state (leases, cursors, counters) keyed by namespace.
    op.create_table(
        "forge_kv",
        sa.Column("namespace", sa.String(128), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("value", sa.Text, nullable=False),  # JSON
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_forge_kv"),
    )


def downgrade() -> None:
    op.drop_table("forge_kv")
    op.drop_index("ix_forge_dead_letters_received_at", table_name="forge_dead_letters")
    op.drop_table("forge_dead_letters")
