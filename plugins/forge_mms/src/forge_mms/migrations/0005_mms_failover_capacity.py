"""mms: failover_events records what the capacity query said (free_elsewhere, orders_fit, capacity_detail)

The failover manager asks the PMS for its factories' capacity on DOWN and before a risk drain; the
event of the report says how much room was free elsewhere and whether the factory's orders fit. Nullable:
the other reports carry none, and earlier rows keep theirs empty.

Revision ID: mms_0005
Revises: mms_0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mms_0005"
down_revision: str | Sequence[str] | None = "mms_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("failover_events") as batch:
        batch.add_column(sa.Column("free_elsewhere", sa.Integer, nullable=True))
        batch.add_column(sa.Column("orders_fit", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("capacity_detail", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("failover_events") as batch:
        batch.drop_column("capacity_detail")
        batch.drop_column("orders_fit")
        batch.drop_column("free_elsewhere")
