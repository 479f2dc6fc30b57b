"""The OEE line's time-series tables as SQLAlchemy Core sees them (created by migration ``oee_line_0001``).

Times are epoch seconds (UTC, float): the PLC's source timestamps, so a stored sample says when the
machine did something, not when it was stored. ``(machine_id, metric, time)`` is a sample's identity:
a replayed (historical) Sparkplug message stores nothing twice. Rollup tables share one layout; the
bucket is the epoch second its interval starts at.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["ROLLUPS", "Rollup", "events", "metadata", "rollup_tables", "telemetry"]

metadata = sa.MetaData()

#: Every sample once. ``quality``: good | uncertain | bad (the OPC UA status, carried by Sparkplug).
telemetry = sa.Table(
    "telemetry", metadata,
    sa.Column("machine_id", sa.String(200), primary_key=True),
    sa.Column("metric", sa.String(200), primary_key=True),
    sa.Column("time", sa.Float, primary_key=True, autoincrement=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
)

#: Intervals of something a machine did: its states (``event_type`` = the state), with ``ts_end`` and
#: ``duration`` NULL while it lasts. ``(machine_id, event_type, ts_start)`` is its identity.
events = sa.Table(
    "events", metadata,
    sa.Column("machine_id", sa.String(200), primary_key=True),
    sa.Column("event_type", sa.String(64), primary_key=True),
    sa.Column("ts_start", sa.Float, primary_key=True, autoincrement=False),
    sa.Column("ts_end", sa.Float),
    sa.Column("duration", sa.Float),
    sa.Column("payload", sa.JSON, nullable=False),
)


class Rollup:
    """One rollup level: its table and bucket width; ``percentiles`` only on the coarser ones."""

    def __init__(self, name: str, seconds: int, percentiles: bool) -> None:
        self.name = name
        self.seconds = seconds
        self.percentiles = percentiles
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
            # NULL: the bucket got samples since its percentiles were last computed (refresh_percentiles)
            columns += [sa.Column("p50", sa.Float), sa.Column("p95", sa.Float)]
        self.table = sa.Table(f"telemetry_{name}", metadata, *columns)

    def bucket_of(self, ts: float) -> int:
        return int(ts // self.seconds) * self.seconds


ROLLUPS = (Rollup("1m", 60, False), Rollup("5m", 300, True), Rollup("1h", 3600, True))


def rollup_tables() -> dict[str, sa.Table]:
    return {r.name: r.table for r in ROLLUPS}
