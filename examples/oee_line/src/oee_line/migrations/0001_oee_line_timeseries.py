"""oee_line: time series (telemetry, events, rollups at 1 min / 5 min / 1 h)

On PostgreSQL with the TimescaleDB extension available (``CREATE EXTENSION`` is tried, in a savepoint, when
it is not installed yet), ``telemetry`` is a hypertable and the rollups are continuous aggregates: see
``_timescale_upgrade``. Elsewhere plain tables, whose rollups the store maintains by upsert.

Revision ID: oee_line_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from oee_line.storage.timescale import is_hypertable

revision: str = "oee_line_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("oee_line",)
depends_on: str | Sequence[str] | None = None

_ROLLUPS = (("1m", False), ("5m", True), ("1h", True))
_log = logging.getLogger("oee_line.migrations")

#: Timescale: seconds per chunk of telemetry and of each rollup level (retention drops whole chunks).
TIMESCALE_CHUNKS = {"telemetry": 86_400, "1m": 86_400, "5m": 7 * 86_400, "1h": 28 * 86_400}
_SECONDS = {"1m": 60, "5m": 300, "1h": 3600}


def _timescale(conn: sa.Connection) -> bool:
    """TimescaleDB is installed, or available and installable here."""
    if conn.dialect.name != "postgresql":
        return False
    if conn.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first():
        return True
    if not conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    except sa.exc.DBAPIError as exc:  # e.g. not allowed to create extensions: plain tables, said so
        _log.warning("oee_line: TimescaleDB is available but CREATE EXTENSION failed (%s); plain tables",
                     str(exc.orig).strip())
        return False
    return True


def _timescale_upgrade(conn: sa.Connection) -> None:
    """``telemetry`` as a hypertable on ``sec`` (the sample's whole epoch second, BIGINT: hypertables partition
    on a timestamp or an integer, never a float, nor a generated column), 1-day chunks; ``time`` stays the
    float every query reads, so the figures are the plain path's. The rollups are continuous aggregates
    with real-time aggregation, named and shaped as the plain tables (``bucket`` = the interval's first
    epoch second, ``time_bucket(60, sec)`` being ``Rollup.bucket_of(time)``), p50/p95 by percentile_cont
    (TimescaleDB 2.23 allows ordered-set aggregates in continuous aggregates). Integer time needs an
    "integer now" function: the newest stored second (the data's own clock, so simulated days work)."""
    schema = conn.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    conn.execute(sa.text("""
        CREATE TABLE telemetry (
            machine_id varchar(200) NOT NULL, metric varchar(200) NOT NULL, time float8 NOT NULL,
            value float8 NOT NULL, quality varchar(16) NOT NULL, sec bigint NOT NULL,
            PRIMARY KEY (machine_id, metric, time, sec))"""))
    conn.execute(sa.text("SELECT create_hypertable('telemetry', by_range('sec', CAST(:chunk AS bigint)))"),
                 {"chunk": TIMESCALE_CHUNKS["telemetry"]})
    conn.execute(sa.text(f"""
        CREATE FUNCTION {schema}.telemetry_now() RETURNS bigint LANGUAGE sql STABLE
        AS $$ SELECT coalesce(max(sec), 0) FROM {schema}.telemetry $$"""))
    conn.execute(sa.text(f"SELECT set_integer_now_func('telemetry', '{schema}.telemetry_now')"))
    for name, percentiles in _ROLLUPS:
        ranks = (", percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,"
                 " percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95") if percentiles else ""
        conn.execute(sa.text(f"""
            CREATE MATERIALIZED VIEW telemetry_{name}
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT machine_id, metric, time_bucket({_SECONDS[name]}, sec) AS bucket, count(*) AS count,
                   sum(value) AS sum, min(value) AS min, max(value) AS max{ranks}
            FROM telemetry GROUP BY machine_id, metric, time_bucket({_SECONDS[name]}, sec)
            WITH NO DATA"""))
        conn.execute(sa.text(f"SELECT set_chunk_time_interval('telemetry_{name}', CAST(:chunk AS bigint))"),
                     {"chunk": TIMESCALE_CHUNKS[name]})


def upgrade() -> None:
    conn = op.get_bind()
    if _timescale(conn):
        _timescale_upgrade(conn)
        _events()
        return
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
    _events()
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


def _events() -> None:
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


def downgrade() -> None:
    conn = op.get_bind()
    if is_hypertable(conn):
        for name, _ in reversed(_ROLLUPS):
            conn.execute(sa.text(f"DROP MATERIALIZED VIEW telemetry_{name}"))
        op.drop_index("ix_events_machine_start", table_name="events")
        op.drop_table("events")
        op.drop_table("telemetry")
        conn.execute(sa.text("DROP FUNCTION telemetry_now()"))
        return
    for name, _ in reversed(_ROLLUPS):
        op.drop_index(f"ix_telemetry_{name}_bucket", table_name=f"telemetry_{name}")
        op.drop_table(f"telemetry_{name}")
    op.drop_index("ix_events_machine_start", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_telemetry_time", table_name="telemetry")
    op.drop_table("telemetry")
