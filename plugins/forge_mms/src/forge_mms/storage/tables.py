"""The monitoring tables as SQLAlchemy Core sees them (created by migration ``mms_0001``)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["factory_status", "failover_events", "heartbeats", "metadata"]

metadata = sa.MetaData()

#: Every beat (raw, kept ``retention`` seconds). Times are epoch seconds.
heartbeats = sa.Table(
    "heartbeats", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("factory_id", sa.String(200), nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("cpu", sa.Float),
    sa.Column("memory", sa.Float),
    sa.Column("errors", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float),
    sa.Column("failed", sa.Boolean, nullable=False),
)

#: One row per factory: its status now, its risk, and the last status the PMS accepted.
factory_status = sa.Table(
    "factory_status", metadata,
    sa.Column("factory_id", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("risk", sa.String(16)),
    sa.Column("error_rate", sa.Float),
    sa.Column("reported_status", sa.String(16)),
    sa.Column("reported_epoch", sa.BigInteger),
    sa.Column("reported_at", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Every status report made to the PMS (failover, recovery, drain) and its outcome.
failover_events = sa.Table(
    "failover_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("factory_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("lease", sa.String(200), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("orders_moved", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    # what the capacity query said (a DOWN, a risk drain; null on other reports or a failed query's figures)
    sa.Column("free_elsewhere", sa.Integer),
    sa.Column("orders_fit", sa.Boolean),
    sa.Column("capacity_detail", sa.Text),
)
