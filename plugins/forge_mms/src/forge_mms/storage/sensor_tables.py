"""The sensor monitoring tables as SQLAlchemy Core sees them (migrations ``mms_0002`` to ``mms_0004``), and the
statements :mod:`forge_mms.storage.sensor_store` writes a batch with, built once per dialect.

Times are epoch seconds (UTC): ``ts``, ``first_seen``, ``last_seen``, ``raised_at`` and ``cleared_at``
are the readings' own timestamps (event time); ``stored_at`` and ``system_events.at`` the processor's
clock. Sequence numbers are BIGINT (a simulated sensor's new life starts at epoch * 10**9 + 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from forge_core.storage import DriverSql
from sqlalchemy import Connection

__all__ = ["READING_FIELDS", "Statements", "alerts", "metadata", "reading_rollups", "readings", "rollups_upsert", "sensors",
           "sensors_upsert", "system_events", "upsert"]

metadata = sa.MetaData()

#: One row per sensor: what it is, the newest reading stored and how many are (``stored``, kept in each
#: batch's transaction: ``sum(stored)`` is the readings table's count without reading it).
sensors = sa.Table(
    "sensors", metadata,
    sa.Column("sensor_id", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("location", sa.String(200), nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"),
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


#: The readings' columns in the order of the store's row tuples (``Statements.driver["readings"]`` on SQLite).
READING_FIELDS = ("sensor_id", "seq", "kind", "value", "ts", "stored_at", "processor", "anomaly")


def upsert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT with ``on_conflict_do_nothing``/``on_conflict_do_update``."""
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise NotImplementedError(f"forge_mms sensor storage: dialect {name!r} is not supported (SQLite, PostgreSQL)")
    return insert(table)


def _least(a: Any, b: Any) -> Any:
    return sa.case((a < b, a), else_=b)


def _greatest(a: Any, b: Any) -> Any:
    return sa.case((a > b, a), else_=b)


def sensors_upsert(stmt: Any) -> Any:
    """``stmt`` (the dialect's INSERT into ``sensors``) merging a row into the sensor's: the newest seq's fields,
    the first time seen, ``stored`` added."""
    new, old = stmt.excluded, sensors.c
    newer = new.last_seq > old.last_seq
    return stmt.on_conflict_do_update(index_elements=["sensor_id"], set_={
        "kind": sa.case((newer, new.kind), else_=old.kind),
        "location": sa.case((newer, new.location), else_=old.location),
        "unit": sa.case((newer, new.unit), else_=old.unit),
        "first_seen": _least(new.first_seen, old.first_seen),
        "last_seen": sa.case((newer, new.last_seen), else_=old.last_seen),
        "last_seq": _greatest(new.last_seq, old.last_seq), "stored": old.stored + new.stored})


def rollups_upsert(stmt: Any) -> Any:
    """``stmt`` (the dialect's INSERT into ``reading_rollups``) adding a row to its sensor's minute."""
    new, old = stmt.excluded, reading_rollups.c
    return stmt.on_conflict_do_update(index_elements=["sensor_id", "minute"], set_={
        "count": old.count + new.count, "sum": old.sum + new.sum,
        "min": _least(new.min, old.min), "max": _greatest(new.max, old.max)})


@dataclass(frozen=True)
class Statements:
    """The batch's statements for one dialect, built once: SQLAlchemy compiles each once (its cache key is
    computed from the same objects) instead of building the ON CONFLICT clauses for every transaction.
    PostgreSQL's readings go in by COPY (:mod:`forge_mms.storage.sensor_copy`), SQLite's by ``driver``.
    ``driver``: on SQLite, the readings, sensors and rollups statements for the driver's cursor
    (:class:`forge_core.storage.DriverSql`: SQLAlchemy's execution around a statement cost more than SQLite's
    work on a batch of one reading, the memory bus's batch under a simulation)."""

    sensors: Any
    raise_alerts: Any
    clear_alerts: Any
    rollups: Any
    mark_published: Any
    driver: dict[str, DriverSql] | None = None

    @classmethod
    def build(cls, conn: Connection) -> Statements:
        sensor_rows = sensors_upsert(upsert(conn, sensors))
        rollup_rows = rollups_upsert(upsert(conn, reading_rollups))
        driver = None
        if conn.dialect.name == "sqlite":  # the rows hold what sqlite3 takes (floats, ints, strings): untyped
            driver = {name: DriverSql.compile(stmt, conn.dialect, name=f"forge_mms sensor store: {name}", typed=False)
                      for name, stmt in (("sensors", sensor_rows), ("rollups", rollup_rows))}
            # the readings without RETURNING, for executemany, a row a tuple in READING_FIELDS order: what it
            # inserted is told by the cursor's rowcount (SensorStore._insert_readings)
            insert = upsert(conn, readings).on_conflict_do_nothing(index_elements=["sensor_id", "seq"])
            driver["readings"] = DriverSql.compile(insert, conn.dialect, name="forge_mms sensor store: readings",
                                                   typed=False, fields=READING_FIELDS)
            # readings without a label (nearly all) leave anomaly out, NULL: sqlite3 binds a None through its
            # adapter lookup (~3.4 k instructions), an int, float or str directly
            unlabelled = READING_FIELDS[:-1]
            driver["readings_unlabelled"] = DriverSql.compile(
                insert, conn.dialect, name="forge_mms sensor store: readings", columns=unlabelled, typed=False,
                fields=unlabelled)
        return cls(
            sensors=sensor_rows,
            raise_alerts=upsert(conn, alerts).on_conflict_do_nothing(index_elements=["alert_id"]),
            clear_alerts=alerts.update().where(alerts.c.alert_id == sa.bindparam("b_id"), alerts.c.state == "raised")
            .values(state="cleared", cleared_at=sa.bindparam("b_at"), cleared_seq=sa.bindparam("b_seq")),
            rollups=rollup_rows,
            mark_published=alerts.update().where(alerts.c.alert_id == sa.bindparam("b_id")).values(
                published=sa.bindparam("b_state")),
            driver=driver)
