"""mms: the readings lose ``ix_readings_ts`` (an index no query of forge-mms or of its plants reads)

Every stored reading paid an entry in it (SQLite: ~5 k instructions a reading, ~2.5 % of a simulated
sensor plant's run), for a time range across sensors that nothing asks: the warm-up, the checks and
``recompute_rollups`` read a sensor's readings by the primary key (``sensor_id`` first), the live view its
window by ``ix_readings_stored_at``. A deployment that does query readings by ``ts`` across sensors keeps
(or creates) an index of its own; the downgrade puts this one back.

Revision ID: mms_0004
Revises: mms_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "mms_0004"
down_revision: str | Sequence[str] | None = "mms_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_readings_ts", table_name="readings")


def downgrade() -> None:
    op.create_index("ix_readings_ts", "readings", ["ts"])
