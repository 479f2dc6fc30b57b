"""The raw side's PostgreSQL writes for the sensor benchmarks (bench_sensor_raw.py, bench_sensor_store.py), the
best plain psycopg 3 can do: each table's rows by binary COPY into a session temp table, then one ``INSERT ...
SELECT ... ORDER BY key ON CONFLICT`` from it (the readings' ``DO NOTHING RETURNING`` says what was stored).
The same statements Forge's ``forge_mms.storage.sensor_copy`` runs; written here by hand, without SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

#: table -> (its stage, its columns and their types)
STAGES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "readings": ("raw_reading_stage", (("sensor_id", "text"), ("seq", "int8"), ("kind", "text"), ("value", "float8"),
                                       ("ts", "float8"), ("anomaly", "text"))),
    "sensors": ("raw_sensor_stage", (("sensor_id", "text"), ("kind", "text"), ("location", "text"), ("unit", "text"),
                                     ("first_seen", "float8"), ("last_seen", "float8"), ("last_seq", "int8"),
                                     ("stored", "int8"))),
    "reading_rollups": ("raw_rollup_stage", (("sensor_id", "text"), ("minute", "int8"), ("count", "int4"),
                                             ("min", "float8"), ("max", "float8"), ("sum", "float8"))),
}
CONFLICT = {
    "readings": "(sensor_id, seq) DO NOTHING RETURNING sensor_id, seq",
    "sensors": "(sensor_id) DO UPDATE SET first_seen = LEAST(sensors.first_seen, excluded.first_seen), "
               "last_seen = CASE WHEN excluded.last_seq > sensors.last_seq THEN excluded.last_seen "
               "ELSE sensors.last_seen END, last_seq = GREATEST(sensors.last_seq, excluded.last_seq), "
               "stored = sensors.stored + excluded.stored",
    "reading_rollups": "(sensor_id, minute) DO UPDATE SET count = reading_rollups.count + excluded.count, "
                       "sum = reading_rollups.sum + excluded.sum, min = LEAST(reading_rollups.min, excluded.min), "
                       "max = GREATEST(reading_rollups.max, excluded.max)",
}
KEYS = {"readings": "sensor_id, seq", "sensors": "sensor_id", "reading_rollups": "sensor_id, minute"}


def create_stages(conn: Any) -> None:
    """The session's temp tables (ON COMMIT DELETE ROWS), once per connection, committed."""
    for stage, columns in STAGES.values():
        body = ", ".join(f"{c} {t}" for c, t in columns)
        conn.execute(f"CREATE TEMP TABLE {stage} ({body}) ON COMMIT DELETE ROWS")
    conn.commit()


#: the readings' stored_at and processor are the batch's: given once to the INSERT, not copied a row
BATCH_COLUMNS = {"readings": ("stored_at", "processor")}


def merge(cur: Any, table: str, rows: Iterable[Sequence[Any]], batch: tuple[Any, ...] = ()) -> list[Any]:
    """Copy ``rows`` (in STAGES' column order) into ``table``'s stage and merge them in key order; ``batch``: the
    values of the table's BATCH_COLUMNS."""
    stage, columns = STAGES[table]
    names = ", ".join(c for c, _t in columns)
    extra = BATCH_COLUMNS.get(table, ())
    with cur.copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([t for _c, t in columns])
        write = copy.write_row
        for row in rows:
            write(row)
    into = ", ".join((names, *extra))
    select = ", ".join((names, *("%s" for _ in extra)))
    cur.execute(f"INSERT INTO {table} ({into}) SELECT {select} FROM {stage} ORDER BY {KEYS[table]} "
                f"ON CONFLICT {CONFLICT[table]}", batch or None, prepare=True)
    return cur.fetchall() if cur.description is not None else []
