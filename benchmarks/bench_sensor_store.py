"""The sensor processor's PostgreSQL write path alone: Forge's ``SensorStore.write_batch`` against raw psycopg 3.

    python benchmarks/bench_sensor_store.py [--batches 40] [--batch 500] [--sensors 50] [--rounds 3]

A throwaway PostgreSQL (:class:`forge_core.testing.PostgresServer`, as the tests start it), migrated to
forge_mms's head. The same batches (``--batch`` readings: the processor's ``batch_max``, ``--sensors`` sensors,
in time order) are written each way into emptied tables, a transaction per batch; printed: the client's CPU
µs a reading (process time: the server's work is not counted), the median of ``--rounds``, and each way's
ratio to Forge's. The ways:

- ``forge``: ``write_batch`` (readings, sensors, rollups; no alerts);
- ``raw``: what ``bench_sensor_raw.py`` does for the same rows (``sensor_raw_copy.py``: each table's rows by
  binary COPY into a temp table, then ``INSERT ... SELECT ... ON CONFLICT``; the readings' ``DO NOTHING
  RETURNING``);
- ``forge readings`` / ``raw readings``: the readings' insert alone (Forge's ``_insert_readings``; COPY into a
  temp table then ``INSERT ... SELECT ... RETURNING``);
- ``raw plain COPY``: binary COPY straight into ``readings`` (no duplicates possible there: a floor, not a way).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forge_mms.anomaly.readings import Reading
from forge_mms.storage.sensor_rows import by_sensor, rollup_rows, sensor_rows
from forge_mms.storage.sensor_store import SensorStore
from sensor_raw_copy import create_stages, merge  # benchmarks/ is on sys.path

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.testing import PostgresServer

MIGRATIONS = Path(__file__).resolve().parents[1] / "plugins" / "forge_mms" / "src" / "forge_mms" / "migrations"
TABLES = "readings, sensors, reading_rollups, alerts"
COLUMNS = "sensor_id, seq, kind, value, ts, stored_at, processor, anomaly"
READING_TYPES = ["text", "int8", "text", "float8", "float8", "float8", "text", "text"]  # COLUMNS' types


def make_batches(batches: int, size: int, sensors: int) -> list[list[Reading]]:
    out: list[list[Reading]] = []
    start = 1_700_000_000.0
    for b in range(batches):
        batch = []
        for i in range(size):
            n = b * size + i
            sid, seq = f"line-{n % sensors:03d}/temp", n // sensors + 1
            ts = start + seq * 0.5
            batch.append(Reading(sid, "temperature", "hall-1", seq, 60.0 + (n % 97) * 0.013, "C", ts, "",
                                 "spike" if n % 211 == 0 else None))
        out.append(batch)
    return out


def raw_readings(cur: Any, batch: list[Reading], now: float) -> set[tuple[str, int]]:
    return set(merge(cur, "readings", ((r.sensor_id, r.seq, r.kind, r.value, r.ts, r.anomaly) for r in batch),
                     (now, "raw")))


def raw_batch(cur: Any, batch: list[Reading], now: float) -> None:
    inserted = raw_readings(cur, batch, now)
    per_sensor = by_sensor(batch)
    fresh = by_sensor(r for r in batch if (r.sensor_id, r.seq) in inserted)
    merge(cur, "sensors", [tuple(row.values()) for row in sensor_rows(per_sensor, fresh)])
    merge(cur, "reading_rollups", [tuple(row.values()) for row in rollup_rows(fresh)])


def plain_copy(cur: Any, batch: list[Reading], now: float) -> None:
    with cur.copy(f"COPY readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(READING_TYPES)
        for r in batch:
            copy.write_row((r.sensor_id, r.seq, r.kind, r.value, r.ts, now, "raw", r.anomaly))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500, help="readings a batch (the processor's batch_max)")
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    batches = make_batches(args.batches, args.batch, args.sensors)
    readings = args.batches * args.batch
    with PostgresServer() as server:
        url = server.create_database("bench_sensor_store")
        engine = create_engine_from_url(url)
        registry = MigrationRegistry(include_core=False)
        registry.add("mms", MIGRATIONS, plugin="forge-mms")
        upgrade(engine, registry)
        store = SensorStore(lambda: engine, offload=True, processor="forge")
        raw = psycopg.connect(server.dsn("bench_sensor_store"))
        create_stages(raw)

        def forge(batch: list[Reading], now: float) -> None:
            store.write_batch(batch, [], now)

        def forge_readings(batch: list[Reading], now: float) -> None:
            with engine.begin() as conn:
                store._insert_readings(conn, store._sql(conn), batch, now)

        def on_raw(write: Callable[[Any, list[Reading], float], Any]) -> Callable[[list[Reading], float], None]:
            def run(batch: list[Reading], now: float) -> None:
                with raw.transaction(), raw.cursor() as cur:
                    write(cur, batch, now)
            return run

        ways = {"forge": forge, "raw": on_raw(raw_batch), "forge readings": forge_readings,
                "raw readings": on_raw(raw_readings), "raw plain COPY": on_raw(plain_copy)}
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _round in range(args.rounds):
            for name, way in ways.items():
                raw.execute(f"TRUNCATE {TABLES}")
                raw.commit()
                way(batches[0], 1.0)  # warm: statements prepared, temp table made, caches filled
                raw.execute(f"TRUNCATE {TABLES}")
                raw.commit()
                began = time.process_time()
                for batch in batches:
                    way(batch, 2.0)
                times[name].append((time.process_time() - began) / readings * 1e6)
        raw.close()
        engine.dispose()
    forge_us = statistics.median(times["forge"])
    forge_readings_us = statistics.median(times["forge readings"])
    print(f"{args.batches} batches of {args.batch} readings ({args.sensors} sensors), median of {args.rounds} rounds, "
          "client CPU µs a reading:")
    for name, values in times.items():
        us = statistics.median(values)
        ref = forge_readings_us if "readings" in name or "COPY" in name else forge_us
        print(f"  {name:16} {us:7.2f} µs   forge/this {ref / us:5.2f}   rounds {', '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
