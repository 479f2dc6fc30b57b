"""PostgreSQL's rows of a batch for :mod:`forge_mms.storage.sensor_store`: each table's rows by COPY (binary, on
the driver's cursor) into a session temp table, then one ``INSERT INTO <table> ... SELECT ... ORDER BY <key>
ON CONFLICT ...`` from it, prepared once per connection.

What it stores is what the multi-row ``INSERT ... ON CONFLICT`` of the rows sorted by key did: rows written in
key order (the row locks of two processors sharing a sensor taken in the same order); the readings' ``ON
CONFLICT DO NOTHING RETURNING`` returns the keys this transaction stored, a key that comes twice stored once,
its first reading in the batch (``ord``, the batch's order, breaks the tie); the sensors and rollups rows are
merged by the same ``ON CONFLICT DO UPDATE`` as SQLite's (:func:`~forge_mms.storage.sensor_tables.sensors_upsert`).
It costs a fraction of the client's CPU: no SQLAlchemy execution and no parameter list a row for psycopg to
split and bind (bench_sensor_store.py).

The temp tables (ON COMMIT DELETE ROWS) are made by the first batch on a connection; made in a transaction, they
are gone if that one rolls back: :class:`Stage` is told to forget its connections after any error, and the next
batch makes them again (``IF NOT EXISTS``).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from forge_core.storage import driver_cursor
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from forge_mms.anomaly.readings import Reading
from forge_mms.storage.sensor_tables import reading_rollups, rollups_upsert, sensors, sensors_upsert

__all__ = ["Stage"]


@dataclass(frozen=True)
class Staged:
    """A temp table a batch's rows of one table are copied into: its columns and their PostgreSQL types."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def create(self) -> str:
        body = ", ".join(f"{column} {kind}" for column, kind in self.columns)
        return f"CREATE TEMP TABLE IF NOT EXISTS {self.name} ({body}) ON COMMIT DELETE ROWS"

    @property
    def copy(self) -> str:
        return f"COPY {self.name} ({', '.join(column for column, _kind in self.columns)}) FROM STDIN (FORMAT BINARY)"

    @property
    def types(self) -> list[str]:
        return [kind.split()[0] for _column, kind in self.columns]

    def table(self) -> sa.Table:
        return sa.Table(self.name, sa.MetaData(), *(sa.Column(column) for column, _kind in self.columns))


#: stored_at and processor are the batch's: given once to the INSERT, not copied for every reading
READINGS = Staged("forge_mms_reading_stage", (
    ("ord", "int4 NOT NULL"), ("sensor_id", "text NOT NULL"), ("seq", "int8 NOT NULL"), ("kind", "text NOT NULL"),
    ("value", "float8 NOT NULL"), ("ts", "float8 NOT NULL"), ("anomaly", "text")))
SENSORS = Staged("forge_mms_sensor_stage", (
    ("sensor_id", "text NOT NULL"), ("kind", "text NOT NULL"), ("location", "text NOT NULL"), ("unit", "text NOT NULL"),
    ("first_seen", "float8 NOT NULL"), ("last_seen", "float8 NOT NULL"), ("last_seq", "int8 NOT NULL"),
    ("stored", "int8 NOT NULL")))
ROLLUPS = Staged("forge_mms_rollup_stage", (
    ("sensor_id", "text NOT NULL"), ("minute", "int8 NOT NULL"), ("count", "int4 NOT NULL"), ("min", "float8 NOT NULL"),
    ("max", "float8 NOT NULL"), ("sum", "float8 NOT NULL")))

INSERT_READINGS = (
    f"INSERT INTO readings (sensor_id, seq, kind, value, ts, stored_at, processor, anomaly) "
    f"SELECT sensor_id, seq, kind, value, ts, %s, %s, anomaly FROM {READINGS.name} ORDER BY sensor_id, seq, ord "
    "ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING sensor_id, seq")


def _merge_sql(conn: Connection, staged: Staged, target: sa.Table, on_conflict: Any, key: tuple[str, ...]) -> str:
    """``INSERT INTO target SELECT * FROM staged ORDER BY key`` with ``on_conflict``'s clause, compiled once."""
    stage = staged.table()
    columns = [column for column, _kind in staged.columns]
    select = sa.select(*(stage.c[c] for c in columns)).order_by(*(stage.c[c] for c in key))
    stmt = on_conflict(insert(target).from_select(columns, select))
    return str(stmt.compile(dialect=conn.dialect))


class Stage:
    """The temp tables on each connection of one store: made once per connection (while no error said to forget)."""

    def __init__(self) -> None:
        self._made: weakref.WeakSet[Any] = weakref.WeakSet()  # the driver connections that have them
        self._merges: dict[str, tuple[Staged, str]] = {}  # "sensors"/"rollups" -> (its stage, its INSERT)

    def forget(self) -> None:
        """A transaction of the store failed: it may have rolled a CREATE back; make them again where needed."""
        self._made.clear()

    def insert(self, conn: Connection, batch: Sequence[Reading], stored_at: float,
               processor: str) -> set[tuple[str, int]]:
        """Insert ``batch`` into ``readings`` in ``conn``'s transaction; the keys it stored."""
        rows = ((i, r.sensor_id, r.seq, r.kind, r.value, r.ts, r.anomaly) for i, r in enumerate(batch))
        return set(self._run(conn, READINGS, rows, INSERT_READINGS, (stored_at, processor)))

    def upsert(self, conn: Connection, name: str, rows: list[dict[str, Any]]) -> None:
        """Merge ``rows`` (in key order) into ``sensors`` or ``reading_rollups`` (``name``: "sensors", "rollups")."""
        found = self._merges.get(name)
        if found is None:
            found = self._merges[name] = (
                (SENSORS, _merge_sql(conn, SENSORS, sensors, sensors_upsert, ("sensor_id",))) if name == "sensors" else
                (ROLLUPS, _merge_sql(conn, ROLLUPS, reading_rollups, rollups_upsert, ("sensor_id", "minute"))))
        staged, sql = found
        columns = [column for column, _kind in staged.columns]
        self._run(conn, staged, ([row[c] for c in columns] for row in rows), sql, None)

    def _run(self, conn: Connection, staged: Staged, rows: Iterable[Sequence[Any]], sql: str,
             params: tuple[Any, ...] | None) -> list[Any]:
        driver = conn.connection.driver_connection
        with driver_cursor(conn) as cursor:
            statement = staged.copy
            try:
                if driver not in self._made:
                    for made in (READINGS, SENSORS, ROLLUPS):
                        statement = made.create
                        cursor.execute(made.create)
                    self._made.add(driver)
                statement = staged.copy
                with cursor.copy(staged.copy) as copy:
                    copy.set_types(staged.types)
                    write = copy.write_row
                    for row in rows:
                        write(row)
                statement = sql
                cursor.execute(sql, params, prepare=True)
                return cursor.fetchall() if cursor.description is not None else []
            except conn.dialect.loaded_dbapi.Error as exc:  # as conn.execute raises it: the processor's retry knows it
                raise sa.exc.DBAPIError.instance(statement, params, exc, conn.dialect.loaded_dbapi.Error) from exc
