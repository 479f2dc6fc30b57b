"""mms: sensor monitoring (sensors, readings, alerts, system_events, reading_rollups)

Revision ID: mms_0002
Revises: mms_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mms_0002"
down_revision: str | Sequence[str] | None = "mms_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sensors",
        sa.Column("sensor_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "readings",
        sa.Column("sensor_id", sa.String(200), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("stored_at", sa.Float, nullable=False),
        sa.Column("processor", sa.String(200), nullable=False),
        sa.Column("anomaly", sa.String(16)),
    )
    # a dashboard's time range across sensors (per sensor, the primary key serves)
    op.create_index("ix_readings_ts", "readings", ["ts"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(400), primary_key=True),
        sa.Column("sensor_id", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float),
        sa.Column("reading_seq", sa.BigInteger, nullable=False),
        sa.Column("raised_at", sa.Float, nullable=False),
        sa.Column("cleared_at", sa.Float),
        sa.Column("cleared_seq", sa.BigInteger),
        sa.Column("processor", sa.String(200), nullable=False),
        sa.Column("published", sa.String(16)),
    )
    # the warm-up reads a sensor's active (or unpublished) alerts
    op.create_index("ix_alerts_sensor_state", "alerts", ["sensor_id", "state"])
    op.create_table(
        "system_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_system_events_at", "system_events", ["at"])
    op.create_table(
        "reading_rollups",
        sa.Column("sensor_id", sa.String(200), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reading_rollups")
    op.drop_index("ix_system_events_at", table_name="system_events")
    op.drop_table("system_events")
    op.drop_index("ix_alerts_sensor_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_readings_ts", table_name="readings")
    op.drop_table("readings")
    op.drop_table("sensors")
