"""b2mml: the transactions ledger (b2mml_keys, b2mml_pending, b2mml_exports)

Revision ID: b2mml_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b2mml_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("b2mml",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # idempotency keys from B2MML IDs: a document re-sent with the same IDs has no second effect
    op.create_table(
        "b2mml_keys",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("ack_id", sa.String(128), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    # plant messages recorded with their keys, published after commit (transactional outbox)
    op.create_table(
        "b2mml_pending",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_b2mml_pending_owner", "b2mml_pending", ["owner", "seq"])
    # documents to the ERP, resent until acknowledged (performance) or delivered (show/respond)
    op.create_table(
        "b2mml_exports",
        sa.Column("export_id", sa.String(256), primary_key=True),
        sa.Column("order_id", sa.String(256), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("needs_ack", sa.Boolean, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("acknowledged", sa.Boolean, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        # one performance document per order, ever (NULL for show/respond documents)
        sa.UniqueConstraint("order_id", name="uq_b2mml_exports_order"),
    )
    op.create_index("ix_b2mml_exports_due", "b2mml_exports", ["acknowledged", "next_at"])


def downgrade() -> None:
    op.drop_index("ix_b2mml_exports_due", "b2mml_exports")
    op.drop_table("b2mml_exports")
    op.drop_index("ix_b2mml_pending_owner", "b2mml_pending")
    op.drop_table("b2mml_pending")
    op.drop_table("b2mml_keys")
