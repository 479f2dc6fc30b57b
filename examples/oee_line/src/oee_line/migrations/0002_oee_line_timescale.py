"""oee_line: on TimescaleDB, telemetry as a hypertable and the rollups as continuous aggregates

On PostgreSQL with the TimescaleDB extension installed, or available and installable (``CREATE EXTENSION`` is
tried in a savepoint; if refused, a warning and the plain tables stay), the plain tables of ``oee_line_0001``
are converted, with the rows they hold:

- ``telemetry`` gains ``sec`` (BIGINT, ``floor(time)``: hypertables partition on a timestamp or an integer,
  never a float nor a generated column), its primary key becomes ``(machine_id, metric, time, sec)`` (a
  hypertable's unique indexes include the partition column) and it becomes a hypertable of 1-day chunks
  (``migrate_data``); an "integer now" function (``telemetry_now()``, the newest stored second: the data's own
  clock, so simulated days work) is set, as integer time requires.
- ``telemetry_1m`` / ``_5m`` / ``_1h`` become continuous aggregates of the same shape (real-time, p50/p95 by
  ``percentile_cont``), rebuilt from the samples. Buckets older than the oldest stored sample (retention
  removed their samples: rollups are kept longer) cannot be rebuilt, so they are kept in
  ``telemetry_<level>_archive``, a plain table of the old shape; downgrading merges them back.

Elsewhere (SQLite, PostgreSQL without TimescaleDB) nothing changes. A database that is already a hypertable
(``oee_line_0001`` as it was between 6871931 and this revision created one directly) is left as it is.

Revision ID: oee_line_0002
Revises: oee_line_0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from oee_line.storage.timescale import is_hypertable

revision: str = "oee_line_0002"
down_revision: str | Sequence[str] | None = "oee_line_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_log = logging.getLogger("oee_line.migrations")

#: (name, bucket seconds, chunk seconds, percentiles): retention drops whole chunks, so a level's chunk is a
#: fraction of its retention (telemetry and 1 min: 1 day, 5 min: 7 days, 1 h: 28 days)
_ROLLUPS = (("1m", 60, 86_400, False), ("5m", 300, 7 * 86_400, True), ("1h", 3600, 28 * 86_400, True))
_TELEMETRY_CHUNK = 86_400
_COLUMNS = "machine_id, metric, bucket, count, sum, min, max"


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


def _primary_key(conn: sa.Connection, table: str) -> str:
    return str(conn.execute(sa.text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                                    "AND contype = 'p'"), {"t": table}).scalar_one())


def upgrade() -> None:
    conn = op.get_bind()
    if not _timescale(conn) or is_hypertable(conn):
        return
    schema = conn.execute(sa.text("SELECT quote_ident(current_schema())")).scalar_one()
    oldest = conn.execute(sa.text("SELECT min(time) FROM telemetry")).scalar()
    for name, seconds, _, _ in _ROLLUPS:  # what the aggregates cannot rebuild is archived, the rest rebuilt
        table, archive = f"telemetry_{name}", f"telemetry_{name}_archive"
        conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {archive}"))
        conn.execute(sa.text(f"ALTER TABLE {archive} RENAME CONSTRAINT {_primary_key(conn, archive)} "
                             f"TO {archive}_pkey"))
        conn.execute(sa.text(f"ALTER INDEX ix_{table}_bucket RENAME TO ix_{archive}_bucket"))
        if oldest is not None:
            conn.execute(sa.text(f"DELETE FROM {archive} WHERE bucket >= :first"),
                         {"first": int(oldest // seconds) * seconds})
        kept = conn.execute(sa.text(f"SELECT count(*) FROM {archive}")).scalar_one()
        if kept:
            _log.warning("oee_line: %d rows of %s predate the oldest stored sample; kept in %s", kept, table, archive)
        else:
            conn.execute(sa.text(f"DROP TABLE {archive}"))
    conn.execute(sa.text("ALTER TABLE telemetry ADD COLUMN sec bigint"))
    conn.execute(sa.text("UPDATE telemetry SET sec = CAST(floor(time) AS bigint)"))
    conn.execute(sa.text("ALTER TABLE telemetry ALTER COLUMN sec SET NOT NULL"))
    conn.execute(sa.text(f"ALTER TABLE telemetry DROP CONSTRAINT {_primary_key(conn, 'telemetry')}"))
    conn.execute(sa.text("ALTER TABLE telemetry ADD CONSTRAINT telemetry_pkey "
                         "PRIMARY KEY (machine_id, metric, time, sec)"))
    conn.execute(sa.text("DROP INDEX ix_telemetry_time"))  # retention drops chunks, by sec
    conn.execute(sa.text("SELECT create_hypertable('telemetry', by_range('sec', CAST(:chunk AS bigint)), "
                         "migrate_data => true)"), {"chunk": _TELEMETRY_CHUNK})
    conn.execute(sa.text(f"""
        CREATE FUNCTION {schema}.telemetry_now() RETURNS bigint LANGUAGE sql STABLE
        AS $$ SELECT coalesce(max(sec), 0) FROM {schema}.telemetry $$"""))
    conn.execute(sa.text(f"SELECT set_integer_now_func('telemetry', '{schema}.telemetry_now')"))
    for name, seconds, chunk, percentiles in _ROLLUPS:
        ranks = (", percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS p50,"
                 " percentile_cont(0.95) WITHIN GROUP (ORDER BY value) AS p95") if percentiles else ""
        conn.execute(sa.text(f"""
            CREATE MATERIALIZED VIEW telemetry_{name}
            WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT machine_id, metric, time_bucket({seconds}, sec) AS bucket, count(*) AS count,
                   sum(value) AS sum, min(value) AS min, max(value) AS max{ranks}
            FROM telemetry GROUP BY machine_id, metric, time_bucket({seconds}, sec)
            WITH NO DATA"""))  # refreshed by the store (a refresh cannot run in a transaction)
        conn.execute(sa.text(f"SELECT set_chunk_time_interval('telemetry_{name}', CAST(:chunk AS bigint))"),
                     {"chunk": chunk})


def downgrade() -> None:
    """Back to ``oee_line_0001``'s plain tables, with every row: the aggregates' buckets (materialized or not)
    and the archived ones merged, the samples without ``sec``."""
    conn = op.get_bind()
    if not is_hypertable(conn):
        return
    for name, _, _, percentiles in _ROLLUPS:
        table, archive = f"telemetry_{name}", f"telemetry_{name}_archive"
        ranks = ", p50 double precision, p95 double precision" if percentiles else ""
        columns = _COLUMNS + (", p50, p95" if percentiles else "")
        conn.execute(sa.text(f"""
            CREATE TABLE {table}_plain (
                machine_id varchar(200) NOT NULL, metric varchar(200) NOT NULL, bucket bigint NOT NULL,
                count integer NOT NULL, sum double precision NOT NULL, min double precision NOT NULL,
                max double precision NOT NULL{ranks}, PRIMARY KEY (machine_id, metric, bucket))"""))
        conn.execute(sa.text(f"INSERT INTO {table}_plain ({columns}) SELECT {columns} FROM {table}"))
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": archive}).scalar() is not None:
            dirty = ", p50 = NULL, p95 = NULL" if percentiles else ""  # refresh_percentiles recomputes them
            conn.execute(sa.text(f"""
                INSERT INTO {table}_plain AS r ({columns}) SELECT {columns} FROM {archive}
                ON CONFLICT (machine_id, metric, bucket) DO UPDATE SET
                    count = r.count + excluded.count, sum = r.sum + excluded.sum,
                    min = least(r.min, excluded.min), max = greatest(r.max, excluded.max){dirty}"""))
            conn.execute(sa.text(f"DROP TABLE {archive}"))
        conn.execute(sa.text(f"DROP MATERIALIZED VIEW {table}"))
        conn.execute(sa.text(f"ALTER TABLE {table}_plain RENAME TO {table}"))
        conn.execute(sa.text(f"ALTER TABLE {table} RENAME CONSTRAINT {table}_plain_pkey TO {table}_pkey"))
        op.create_index(f"ix_{table}_bucket", table, ["bucket"])
    conn.execute(sa.text("""
        CREATE TABLE telemetry_plain (
            machine_id varchar(200) NOT NULL, metric varchar(200) NOT NULL, time double precision NOT NULL,
            value double precision NOT NULL, quality varchar(16) NOT NULL,
            PRIMARY KEY (machine_id, metric, time))"""))
    conn.execute(sa.text("INSERT INTO telemetry_plain SELECT machine_id, metric, time, value, quality FROM telemetry"))
    conn.execute(sa.text("DROP TABLE telemetry"))
    conn.execute(sa.text("DROP FUNCTION telemetry_now()"))
    conn.execute(sa.text("ALTER TABLE telemetry_plain RENAME TO telemetry"))
    conn.execute(sa.text("ALTER TABLE telemetry RENAME CONSTRAINT telemetry_plain_pkey TO telemetry_pkey"))
    op.create_index("ix_telemetry_time", "telemetry", ["time"])
