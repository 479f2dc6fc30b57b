"""pasta: each batch records the heartbeat (envelope id) it was made for, at most once per heartbeat

A heartbeat handled but not yet committed on Kafka is delivered again after a crash or a consumer
group's session timeout (at least once). Production writes the heartbeat's envelope id with its two
batches in one transaction; the unique index (heartbeat_id, is_fresh) refuses a second pair, so a
redelivery has no second effect (effectively once). The seed stock has no heartbeat (NULL, which a
unique index does not compare).

Revision ID: pasta_0002
Revises: pasta_0001
Create Date: 2025-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "pasta_0002"
down_revision: str | Sequence[str] | None = "pasta_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Text: an envelope id is any string the sender chose; a length limit would make a long one a
    # DataError, retried as a lost connection would be.
    op.add_column("batches", sa.Column("heartbeat_id", sa.Text, nullable=True))
    op.create_index("ux_batches_heartbeat", "batches", ["heartbeat_id", "is_fresh"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_batches_heartbeat", table_name="batches")
    with op.batch_alter_table("batches") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("heartbeat_id")
