"""The sensor plant's simulated day without Forge: the floor under bench_sensor_sim.py's 10 s target.

    python benchmarks/bench_sensor_floor.py [--hours 24] [--seed 7] [--rounds 2] [--no-plant]

Does in plain Python, one loop, per reading what ``forge run examples/sensor_monitoring --simulate 24h``
does, and nothing else:

- the wake-up: once from a heap of (virtual time, sensor), no asyncio (the tightest discrete-event loop), and
  once as ``call_at`` callbacks on Forge's virtual asyncio loop (no task, no coroutine: the least the
  design's asyncio costs); both must give the same floor digest;
- the sensor: the anomaly draw, the plant's own ``SensorModel.read`` (its value), the JSON object with its
  RFC 3339 time (built once per second, as Forge's ``format_time`` does);
- what the design asks of a message: the compiled schema check (jsonschema-rs, the same schema), an id and
  a time stamp, and the trace line whose digest proves the run deterministic (the run's own ``TraceRecorder``);
- the processor, once per second (the plant's ``batch_wait``): forge_mms's ``parse_reading`` and the plant's
  six rules (``RuleBook``: the alerts' arithmetic is the application's, not the framework's), the readings
  inserted by ``executemany`` into the plant's own SQLite database (its migrations made it: the same tables
  and indexes; WAL, ``synchronous=OFF`` as in a simulated run), and per 500 readings (the plant's
  ``virtual_commit_readings``) the sensors' and the minutes' rollup rows upserted and a COMMIT; a
  consumer-status row every 5 s.

What it leaves out is Forge: the bus and its envelope objects, the memory transport's consumer group and
batching, the timers on an asyncio loop, the handlers' machinery, the storage layer around the driver, the
metrics and the run's checks. Alerts (a few dozen a day) are judged but not written. So the floor is what a
day of this plant's work costs in CPython on this machine: if it is above the target, the target is out of
reach by design, as MQTT's 0.9 and Kafka's 0.8 are. It prints the floor's CPU seconds on each loop (and its
parts, measured by leaving them out one at a time), beside Forge's day from the same run (``--no-plant``: the
floor alone), as ratios to the target and to each other.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from forge_mms.anomaly.engine import RuleBook
from forge_mms.anomaly.readings import parse_reading
from forge_mms.settings import SensorProcessorParams
from sensor_monitoring.settings import SensorsParams
from sensor_monitoring.simulation import SensorModel
from sim_day import Traced  # benchmarks/ is on sys.path when run as a script

from forge_core import VirtualClock
from forge_core.bus.stats import TraceRecorder
from forge_core.clock import VIRTUAL_EPOCH as EPOCH
from forge_core.messages.envelope import format_time
from forge_core.runtime import Runtime, load_plant

ROOT = Path(__file__).resolve().parents[1]
TARGET = 10.0  # s of wall time for 24 simulated hours (issue 17)
READING = "mms.sensor_reading"
BATCH_WAIT = 1.0  # the plant's memory transport: a batch of readings a second to the processor
COMMIT_READINGS = 500  # forge_mms: virtual_commit_readings
STATUS_EVERY = 5.0  # the processor's consumer_status row

INSERT = ("INSERT INTO readings (sensor_id, seq, kind, value, ts, stored_at, processor) VALUES (?, ?, ?, ?, ?, ?, ?) "
          "ON CONFLICT (sensor_id, seq) DO NOTHING")
INSERT_LABELLED = ("INSERT INTO readings (sensor_id, seq, kind, value, ts, stored_at, processor, anomaly) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sensor_id, seq) DO NOTHING")
SENSORS = ("INSERT INTO sensors (sensor_id, kind, location, unit, first_seen, last_seen, last_seq, stored) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sensor_id) DO UPDATE SET last_seen = excluded.last_seen, "
           "last_seq = max(sensors.last_seq, excluded.last_seq), stored = sensors.stored + excluded.stored")
ROLLUPS = ("INSERT INTO reading_rollups (sensor_id, minute, count, min, max, sum) VALUES (?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (sensor_id, minute) DO UPDATE SET count = reading_rollups.count + excluded.count, "
           "min = min(reading_rollups.min, excluded.min), max = max(reading_rollups.max, excluded.max), "
           "sum = reading_rollups.sum + excluded.sum")
STATUS = "INSERT INTO system_events (at, kind, source, detail) VALUES (?, ?, ?, ?)"


def plant_params() -> tuple[SensorsParams, SensorProcessorParams]:
    doc = yaml.safe_load((ROOT / "examples" / "sensor_monitoring" / "plant.yaml").read_text())
    components = doc["components"]
    return (SensorsParams.model_validate(components["sensors"]["params"]),
            SensorProcessorParams.model_validate(components["processors"]["params"]))


def open_db(tmp: Path) -> sqlite3.Connection:
    """The plant's own database, made by its migrations (the plant started for a simulated instant, its rows
    then deleted: the same tables and indexes), opened on SQLite as the plant opens it."""
    from sensor_monitoring.testing import derive

    plugins, manifest = load_plant(derive(tmp / "plant"), profile=None)
    clock = VirtualClock()
    try:
        clock.run(Runtime(manifest, plugins, clock=clock, seed=0, serve_health=False).run(0.001))
    finally:
        clock.close()
    path = tmp / "plant" / "sensor_monitoring.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for table in ("readings", "sensors", "reading_rollups", "alerts", "system_events"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # as a simulated run's engine (storage.engine.commit_without_fsync)
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def floor_day(seconds: float, seed: int, *, leave_out: str = "", loop: str = "heap") -> tuple[float, int, str]:
    """(CPU s, readings, trace digest) of ``seconds`` of the plant's work, its wake-ups from a heap (``loop``
    "heap": the tightest) or as callbacks on Forge's virtual asyncio loop ("asyncio": ``call_at``, no task,
    the least an asyncio design costs); ``leave_out`` one part ("check", "trace", "rules", "store") to
    measure what it costs."""
    sensors_params, processor_params = plant_params()
    schema = json.loads((ROOT / "plugins" / "forge_mms" / "src" / "forge_mms" / "schemas" /
                         f"{READING}.json").read_text())
    is_valid = jsonschema_rs.validator_for(schema).is_valid
    book = RuleBook(processor_params.rules)
    kinds = processor_params.kinds
    rng = random.Random(seed)
    specs = [spec for replica in range(3) for spec in sensors_params.sensors(replica)]
    models = [SensorModel(sid, kind, location, sensors_params.signal(kind), random.Random(rng.getrandbits(64)),
                          burst_rate=sensors_params.anomalies.burst_rate) for sid, kind, location in specs]
    states = {m.sensor_id: book.fresh(m.sensor_id, m.kind) for m in models}
    seqs, last_at = [0] * len(models), [0.0] * len(models)
    interval, anomalies = sensors_params.interval, sensors_params.anomalies
    rate, first_after, quiet_after = anomalies.rate, anomalies.first_after, anomalies.quiet_after
    anomaly_kinds = [kind for kind, weight in anomalies.weights.items() if weight > 0]
    anomaly_weights = [anomalies.weights[kind] for kind in anomaly_kinds]
    trace = TraceRecorder()  # the run's own recorder: the same line, rounding and hashing per message
    traced_line = Traced(READING, "sensors")
    check, traced, judged, stored = (leave_out != part for part in ("check", "trace", "rules", "store"))
    batch: list[dict[str, Any]] = []
    uncommitted: list[Any] = []
    count = [0]

    def sample(i: int, now: float) -> float:
        """Sensor i's reading at ``now`` (seconds into the run), checked, traced and queued; its next time."""
        model = models[i]
        if (model.episode is None or model.active(now) is None) and now >= first_after \
                and now >= model.quiet_since + quiet_after \
                and rng.random() < rate * (now - last_at[i]) / 3600.0:  # the plant's draw (Sensors._sampler)
            anomaly = rng.choices(anomaly_kinds, weights=anomaly_weights)[0]
            model.inject(anomaly, now, anomalies.duration(anomaly), "random")
        last_at[i] = now
        value, anomaly = model.read(now)
        seqs[i] += 1
        count[0] += 1
        at = EPOCH + now
        payload = {"sensor_id": model.sensor_id, "kind": model.kind, "location": model.location, "seq": seqs[i],
                   "value": value, "unit": model.signal.unit, "timestamp": format_time(at), "anomaly": anomaly}
        if check and not is_valid(payload):
            raise SystemExit(f"invalid reading: {payload}")
        if traced:
            traced_line.time, traced_line.id, traced_line.key, traced_line.payload = \
                at, f"floor-{count[0]}", model.sensor_id, payload
            trace.record("sensor-data", traced_line)  # type: ignore[arg-type]  # an Envelope's traced fields
        batch.append(payload)
        return now + interval / model.interval_factor(now)

    def process(now: float) -> None:
        """The processor's batch of the last second (and every 5 s its status row)."""
        nonlocal batch, uncommitted
        if batch:
            uncommitted = _process(batch, kinds, states, cursor, EPOCH + now, uncommitted, judged, stored)
            batch = []
            if len(uncommitted) >= COMMIT_READINGS:
                _commit(conn, cursor, uncommitted, stored)
                uncommitted = []
        if stored and now % STATUS_EVERY == 0.0:
            cursor.execute(STATUS, (EPOCH + now, "consumer_status", "processors", '{"lag": 0}'))

    phases = [rng.uniform(0.0, interval) for _ in models]
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_db(Path(tmp))
        cursor = conn.cursor()
        conn.execute("BEGIN")
        cpu = time.process_time()
        if loop == "heap":
            _heap_loop(seconds, phases, sample, process)
        else:
            _asyncio_loop(seconds, phases, sample, process)
        process(seconds)
        _commit(conn, cursor, uncommitted, stored)
        digest = trace.digest
        took = time.process_time() - cpu
        conn.close()
    return took, count[0], digest


def _heap_loop(seconds: float, phases: list[float], sample: Callable[[int, float], float],
               process: Callable[[float], None]) -> None:
    """Wake-ups from a heap of (time, sensor), the batch every BATCH_WAIT between them."""
    heap = [(phase, i) for i, phase in enumerate(phases)]
    heapq.heapify(heap)
    next_batch = BATCH_WAIT
    pop, push = heapq.heappop, heapq.heappush
    while heap[0][0] < seconds:
        now, i = pop(heap)
        while now >= next_batch:
            process(next_batch)
            next_batch += BATCH_WAIT
        push(heap, (sample(i, now), i))


def _asyncio_loop(seconds: float, phases: list[float], sample: Callable[[int, float], float],
                  process: Callable[[float], None]) -> None:
    """The same wake-ups as ``call_at`` callbacks on Forge's virtual event loop (no task, no coroutine)."""
    clock = VirtualClock(start=0.0)
    loop = clock.new_loop()
    call_at, now = loop.call_at, loop.time

    def wake(i: int) -> None:
        call_at(sample(i, now()), wake, i)

    def batch() -> None:
        process(now())
        call_at(now() + BATCH_WAIT, batch)

    for i, phase in enumerate(phases):
        call_at(phase, wake, i)
    call_at(BATCH_WAIT, batch)
    try:
        clock.run(clock.sleep(seconds))
    finally:
        clock.close()


def _process(batch: list[dict[str, Any]], kinds: dict[str, str], states: dict[str, Any], cursor: sqlite3.Cursor,
             stored_at: float, uncommitted: list[Any], judged: bool, stored: bool) -> list[Any]:
    readings = [parse_reading(payload, kinds) for payload in batch]
    if judged:
        for reading in readings:
            states[reading.sensor_id].observe(reading)
    if stored:
        plain = [(r.sensor_id, r.seq, r.kind, r.value, r.ts, stored_at, "processors")
                 for r in readings if r.anomaly is None]
        labelled = [(r.sensor_id, r.seq, r.kind, r.value, r.ts, stored_at, "processors", r.anomaly)
                    for r in readings if r.anomaly is not None]
        cursor.executemany(INSERT, plain)
        if labelled:
            cursor.executemany(INSERT_LABELLED, labelled)
    uncommitted.extend(readings)
    return uncommitted


def _commit(conn: sqlite3.Connection, cursor: sqlite3.Cursor, readings: list[Any], stored: bool) -> None:
    """The group's sensors rows (one per sensor) and rollup rows (one per sensor and minute), then COMMIT."""
    if stored and readings:
        sensors: dict[str, Any] = {}
        rollups: dict[tuple[str, int], list[float]] = {}
        for r in readings:
            row = sensors.get(r.sensor_id)
            sensors[r.sensor_id] = (r.sensor_id, r.kind, r.location, r.unit,
                                    row[4] if row else r.ts, r.ts, r.seq, (row[7] if row else 0) + 1)
            key = (r.sensor_id, int(r.ts // 60) * 60)
            agg = rollups.get(key)
            if agg is None:
                rollups[key] = [1, r.value, r.value, r.value]
            else:
                agg[0] += 1
                agg[1] = min(agg[1], r.value)
                agg[2] = max(agg[2], r.value)
                agg[3] += r.value
        cursor.executemany(SENSORS, list(sensors.values()))
        cursor.executemany(ROLLUPS, [(sid, minute, *agg) for (sid, minute), agg in rollups.items()])
    conn.execute("COMMIT")
    conn.execute("BEGIN")


def plant_day(seconds: float, seed: int) -> tuple[float, int]:
    """Forge's CPU s and readings for the same simulated time (bench_sensor_sim.py's run, its trace recorded)."""
    from sensor_monitoring.testing import derive
    from sim_day import simulate

    _wall, cpu, summary = simulate(derive, "sensor_monitoring", seconds, seed)
    failed = [c for c in summary.checks if not c.passed]
    if failed:
        raise SystemExit(f"the plant's checks failed: {failed}")
    return cpu, sum(r.get("produced", 0) for name, r in summary.reports.items() if name.startswith("sensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-plant", action="store_true", help="the floor alone, not Forge's day beside it")
    parser.add_argument("--no-parts", action="store_true", help="skip the runs leaving a part out")
    args = parser.parse_args()
    seconds, per_day = args.hours * 3600, TARGET * args.hours / 24
    print(f"examples/sensor_monitoring, {args.hours:g} simulated h, seed {args.seed}; load average "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; target {per_day:g} s")
    for round_ in range(1, args.rounds + 1):
        floor, readings, digest = floor_day(seconds, args.seed)
        on_asyncio, _, same = floor_day(seconds, args.seed, loop="asyncio")
        assert same == digest, "the two loops must do the same work"
        print(f"  round {round_}: {readings} readings (floor digest {digest[:16]})", flush=True)
        print(f"    floor, heap loop:     {floor:6.2f} s CPU  {floor / readings * 1e6:5.1f} us a reading  "
              f"{floor / per_day:.2f} of the target", flush=True)
        print(f"    floor, asyncio loop:  {on_asyncio:6.2f} s CPU  {on_asyncio / readings * 1e6:5.1f} us a reading  "
              f"{on_asyncio / per_day:.2f} of the target", flush=True)
        if not args.no_plant:
            forge, produced = plant_day(seconds, args.seed)
            print(f"    Forge:                {forge:6.2f} s CPU  {forge / produced * 1e6:5.1f} us a reading  "
                  f"({produced} readings) "
                  f"{forge / per_day:.2f} of the target;  floor (asyncio) / Forge {on_asyncio / forge:.2f}, "
                  f"floor (heap) / Forge {floor / forge:.2f}", flush=True)
    if not args.no_parts:
        whole, _, _ = floor_day(seconds, args.seed)
        for part in ("check", "trace", "rules", "store"):
            without, _, _ = floor_day(seconds, args.seed, leave_out=part)
            print(f"  the floor's {part:<6} {whole - without:6.2f} s CPU ({(whole - without) / whole:.0%} of it)")
    print(f"  load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
