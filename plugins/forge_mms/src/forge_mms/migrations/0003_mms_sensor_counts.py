"""mms: a running count of stored readings per sensor (sensors.stored) and readings by stored_at

A view of the plant (sensor_monitoring's live view) reads how many readings are stored and the ones
stored in its last window every second: ``count(*)`` of ``readings`` and a scan by ``stored_at`` grew
with the table. ``sensors.stored`` is kept in each batch's transaction (the readings it inserted), so
``sum(stored)`` over the sensors is the exact count; ``ix_readings_stored_at`` bounds the window's read.

Revision ID: mms_0003
Revises: mms_0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mms_0003"
down_revision: str | Sequence[str] | None = "mms_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sensors") as batch:
        batch.add_column(sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"))
    op.execute("UPDATE sensors SET stored = (SELECT count(*) FROM readings WHERE readings.sensor_id = sensors.sensor_id)")
    op.create_index("ix_readings_stored_at", "readings", ["stored_at"])


def downgrade() -> None:
    op.drop_index("ix_readings_stored_at", table_name="readings")
    with op.batch_alter_table("sensors") as batch:
        batch.drop_column("stored")
