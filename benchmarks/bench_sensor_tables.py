"""What a simulated run of the sensor monitoring plant leaves in its database, hashed table by table.

    python benchmarks/bench_sensor_tables.py [--hours 1] [--seed 7]

Runs examples/sensor_monitoring as ``bench_sensor_sim.py`` does (embedded profile, virtual clock, a fresh
SQLite database in a copy) and prints, per table, its row count, a hash of every column and a hash without the
columns that say *when* the processor did its work (``stored_at``, an event row's id, time and detail), floats
rounded to 1e-6 (a rollup's sum is added in batch order). Two runs whose second hashes agree stored the same
readings, alerts, sensors and rollups, even when their trace digests differ because batches were delivered at
other virtual times (docs/performance.md, sensor monitoring, stop 31). Also prints the run's CPU time, digest and
checks.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from sensor_monitoring.testing import derive

from forge_core import VirtualClock
from forge_core.runtime import Runtime, load_plant

#: Columns that say when the processor worked, not what it stored.
WHEN = ("stored_at", "id", "at", "detail", "published_at")


def digest(rows: list[Any]) -> str:
    return hashlib.sha256(repr(sorted(repr(r) for r in rows)).encode()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugins, manifest = load_plant(derive(Path(tmp) / "sensor_monitoring"))
        clock = VirtualClock()
        runtime = Runtime(manifest, plugins, clock=clock, seed=args.seed, record_trace=True, serve_health=False)
        cpu, load = time.process_time(), os.getloadavg()[0]
        try:
            summary = clock.run(runtime.run(args.hours * 3600))
        finally:
            clock.close()
        print(f"{args.hours:g} h, seed {args.seed}: {time.process_time() - cpu:.2f} s CPU, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}; digest {summary.trace_digest[:16]}, checks "
              f"{sum(c.passed for c in summary.checks)}/{len(summary.checks)}")
        con = sqlite3.connect(next(Path(tmp).rglob("sensor_monitoring.db")))
        try:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
                rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
                keep = [i for i, c in enumerate(columns) if c not in WHEN]
                what = [tuple(round(r[i], 6) if isinstance(r[i], float) else r[i] for i in keep) for r in rows]
                left = [c for c in columns if c in WHEN]
                print(f"  {table:22} {len(rows):8} rows  all {digest(rows)}  without {left or '-'} {digest(what)}")
        finally:
            con.close()


if __name__ == "__main__":
    main()
