"""industry40: what the ERP link must not forget across a crash (its requests, its unanswered asks)

The tables of :mod:`industry40.components.erp_state`: one row per imported B2MML request and one per
``sched.order_request`` the PMS has not answered yet.

Revision ID: industry40_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "industry40_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("industry40",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "industry40_erp_requests",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("order_id", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float, nullable=True),
        sa.Column("exported", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "industry40_erp_asks",
        sa.Column("request_id", sa.String(256), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=True),
        sa.Column("asked_at", sa.Float, nullable=False))


def downgrade() -> None:
    op.drop_table("industry40_erp_asks")
    op.drop_table("industry40_erp_requests")
