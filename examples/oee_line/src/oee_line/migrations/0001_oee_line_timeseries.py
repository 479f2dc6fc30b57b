"""oee_line: time series (telemetry, events, rollups at 1 min / 5 min / 1 h)

Revision ID: oee_line_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "oee_line_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("oee_line",)
depends_on: str | Sequence[str] | None = None

_ROLLUPS = (("1m", False), ("5m", True), ("1h", True))


def upgrade() -> None:
    op.create_table(
        "telemetry",
        sa.Column("machine_id", sa.String(200), primary_key=True),
        sa.Column("metric", sa.String(200), primary_key=True),
        sa.Column("time", sa.Float, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("quality", sa.String(16), nullable=False),
    )
    # retention deletes by time across machines (per machine and metric, the primary key serves)
    op.create_index("ix_telemetry_time", "telemetry", ["time"])
    op.create_table(
        "events",
        sa.Column("machine_id", sa.String(200), primary_key=True),
        sa.Column("event_type", sa.String(64), primary_key=True),
        sa.Column("ts_start", sa.Float, primary_key=True, autoincrement=False),
        sa.Column("ts_end", sa.Float),
        sa.Column("duration", sa.Float),
        sa.Column("payload", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_machine_start", "events", ["machine_id", "ts_start"])
    for name, percentiles in _ROLLUPS:
        columns: list[sa.schema.SchemaItem] = [
            sa.Column("machine_id", sa.String(200), primary_key=True),
            sa.Column("metric", sa.String(200), primary_key=True),
            sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("count", sa.Integer, nullable=False),
            sa.Column("sum", sa.Float, nullable=False),
            sa.Column("min", sa.Float, nullable=False),
            sa.Column("max", sa.Float, nullable=False),
        ]
        if percentiles:
            columns += [sa.Column("p50", sa.Float), sa.Column("p95", sa.Float)]
        op.create_table(f"telemetry_{name}", *columns)
        op.create_index(f"ix_telemetry_{name}_bucket", f"telemetry_{name}", ["bucket"])


def downgrade() -> None:
    for name, _ in reversed(_ROLLUPS):
        op.drop_index(f"ix_telemetry_{name}_bucket", table_name=f"telemetry_{name}")
        op.drop_table(f"telemetry_{name}")
    op.drop_index("ix_events_machine_start", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_telemetry_time", table_name="telemetry")
    op.drop_table("telemetry")
