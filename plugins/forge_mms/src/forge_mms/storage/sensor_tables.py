"""The sensor monitoring tables as SQLAlchemy Core sees them (created by migration ``mms_0002``).

Times are epoch seconds (UTC): ``ts``, ``first_seen``, ``last_seen``, ``raised_at`` and ``cleared_at``
are the readings' own timestamps (event time); ``stored_at`` and ``system_events.at`` the processor's
clock. Sequence numbers are BIGINT (a simulated sensor's new life starts at epoch * 10**9 + 1).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["alerts", "metadata", "reading_rollups", "readings", "sensors", "system_events"]

metadata = sa.MetaData()

#: One row per sensor: what it is and the newest reading stored.
sensors = sa.Table(
    "sensors", metadata,
    sa.Column("sensor_id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("location", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

#: Every reading once: ``(sensor_id, seq)`` is its idempotency key.
readings = sa.Table(
    "readings", metadata,
    sa.Column("sensor_id", sa.String(200), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("stored_at", sa.Float, nullable=False),
    sa.Column("processor", sa.String(200), nullable=False),
    sa.Column("anomaly", sa.String(16)),
)

#: One row per alert; clearing updates ``state``, ``cleared_at``, ``cleared_seq``. ``published``: the last
#: state put on the bus (NULL: none yet), so a processor taking over publishes what was stored but not sent.
alerts = sa.Table(
    "alerts", metadata,
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

#: What happened to the system: partitions assigned/revoked/lost, broker and consumer failures, drill marks.
system_events = sa.Table(
    "system_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)

#: Per sensor and minute (epoch seconds of its start): count, min, max, sum of the readings' values.
reading_rollups = sa.Table(
    "reading_rollups", metadata,
    sa.Column("sensor_id", sa.String(200), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("min", sa.Float, nullable=False),
    sa.Column("max", sa.Float, nullable=False),
    sa.Column("sum", sa.Float, nullable=False),
)
