"""PostgreSQL's readings insert for :mod:`forge_mms.storage.sensor_store`: the batch by COPY (binary, on the
driver's cursor) into a session temp table, then one ``INSERT INTO readings ... SELECT ... ORDER BY sensor_id,
seq ON CONFLICT DO NOTHING RETURNING sensor_id, seq``, prepared once per connection.

What it stores and returns is what the multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` of the rows
sorted by key did: rows inserted in key order (the row locks of two processors sharing a sensor taken in the
same order), a key that comes twice stored once, its first reading in the batch (``ord``, the batch's order,
breaks the tie), RETURNING the keys this transaction stored. It costs ~1/10 of the client's CPU: no SQLAlchemy
compile and no parameter list of 8 values a reading for psycopg to split and bind (bench_sensor_store.py).

The temp table (ON COMMIT DELETE ROWS) is made by the first batch on a connection; made in a transaction, it
is gone if that one rolls back: :class:`Stage` is told to forget its connections after any error, and the next
batch makes it again (``IF NOT EXISTS``).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from forge_core.storage import driver_cursor
from sqlalchemy import Connection

from forge_mms.anomaly.readings import Reading

__all__ = ["Stage"]

TABLE = "forge_mms_reading_stage"

#: stored_at and processor are the batch's: given once to the INSERT, not copied for every reading
CREATE = (f"CREATE TEMP TABLE IF NOT EXISTS {TABLE} (ord integer NOT NULL, sensor_id text NOT NULL, "
          "seq bigint NOT NULL, kind text NOT NULL, value double precision NOT NULL, ts double precision NOT NULL, "
          "anomaly text) ON COMMIT DELETE ROWS")
COPY = f"COPY {TABLE} (ord, sensor_id, seq, kind, value, ts, anomaly) FROM STDIN (FORMAT BINARY)"
TYPES = ("int4", "text", "int8", "text", "float8", "float8", "text")
INSERT = (f"INSERT INTO readings (sensor_id, seq, kind, value, ts, stored_at, processor, anomaly) "
          f"SELECT sensor_id, seq, kind, value, ts, %s, %s, anomaly FROM {TABLE} ORDER BY sensor_id, seq, ord "
          "ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING sensor_id, seq")


class Stage:
    """The temp table on each connection of one store: made once per connection (while no error said to forget)."""

    def __init__(self) -> None:
        self._made: weakref.WeakSet[Any] = weakref.WeakSet()  # the driver connections that have it

    def forget(self) -> None:
        """A transaction of the store failed: it may have rolled a CREATE back; make it again where needed."""
        self._made.clear()

    def insert(self, conn: Connection, batch: Sequence[Reading], stored_at: float,
               processor: str) -> set[tuple[str, int]]:
        """Insert ``batch`` into ``readings`` in ``conn``'s transaction; the keys it stored."""
        driver = conn.connection.driver_connection
        with driver_cursor(conn) as cursor:
            sql, params = CREATE, None
            try:
                if driver not in self._made:
                    cursor.execute(CREATE)
                    self._made.add(driver)
                sql = COPY
                with cursor.copy(COPY) as copy:
                    copy.set_types(TYPES)
                    write = copy.write_row
                    for i, r in enumerate(batch):
                        write((i, r.sensor_id, r.seq, r.kind, r.value, r.ts, r.anomaly))
                sql, params = INSERT, (stored_at, processor)
                cursor.execute(INSERT, params, prepare=True)
                return set(cursor.fetchall())
            except conn.dialect.loaded_dbapi.Error as exc:  # as conn.execute raises it: the processor's retry knows it
                raise sa.exc.DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error) from exc
