"""pasta: the batches table, seeded with 20 batches of 10 (5 per blade type and freshness)

Revision ID: pasta_0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "pasta_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("pasta",)
depends_on: str | Sequence[str] | None = None

SEED_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def seed_rows() -> list[dict[str, object]]:
    """The original plant's starting stock: 5 batches of 10 per (blade, fresh) = 200 units."""
    return [{"blade_type": blade, "is_fresh": fresh, "production_date": SEED_DATE, "in_stock": 10}
            for blade in ("A", "B") for fresh in (True, False) for _ in range(5)]


def upgrade() -> None:
    batches = op.create_table(
        "batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("blade_type", sa.String(1), nullable=False),
        sa.Column("is_fresh", sa.Boolean, nullable=False),
        sa.Column("production_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_stock", sa.Integer, nullable=False),
        sa.CheckConstraint("blade_type IN ('A', 'B')", name="ck_batches_blade_type"),
        sa.CheckConstraint("in_stock >= 0", name="ck_batches_in_stock"),
    )
    # Production keeps the non-empty batches in memory; this index makes loading them cheap.
    op.create_index("ix_batches_in_stock", "batches", ["in_stock"])
    op.bulk_insert(batches, seed_rows())


def downgrade() -> None:
    op.drop_index("ix_batches_in_stock", table_name="batches")
    op.drop_table("batches")
