"""The raw side of bench_sensor_pipeline.py: one confluent-kafka consumer process doing the processor's
work per batch by hand (decode, the same rules, one psycopg 3 transaction, alerts produced, offsets
stored), the best its side can do; and what both sides share (the plant's rules, the consumer session,
the sensor kinds). Started by bench_sensor_pipeline.py as ``bench_sensor_pipeline.py raw-worker ...``.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
SESSION = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}  # the sensor plant's cluster profile
KINDS = {"temperature": ("temp", "C", 62.0, 0.4), "vibration": ("vib", "mm/s", 2.2, 0.25),
         "energy": ("energy", "kW", 45.0, 1.2)}


def plant_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "examples" / "sensor_monitoring" / "plant.yaml").read_text())
    return list(doc["components"]["processors"]["params"]["rules"])


# -- the raw side's consumer process -------------------------------------------------------------
def raw_worker(bootstrap: str, topic: str, dsn: str, name: str) -> None:
    """One raw consumer: consume, decode, judge, write one transaction per batch, store offsets."""
    import psycopg
    from confluent_kafka import Consumer, Producer, TopicPartition
    from forge_mms.anomaly.alerts import ActiveAlert
    from forge_mms.anomaly.engine import RuleBook, SensorState
    from forge_mms.anomaly.readings import Reading, parse_reading
    from forge_mms.settings import SensorProcessorParams
    from sensor_raw_copy import create_stages, merge

    params = SensorProcessorParams.load({"rules": plant_rules()})
    book, kinds = RuleBook(params.rules), params.kinds  # type: ignore[arg-type]
    states: dict[str, SensorState] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": True,
                         "enable.auto.offset.store": False, "auto.commit.interval.ms": 1000,
                         "auto.offset.reset": "earliest", **SESSION})
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    consumer.subscribe([topic], on_assign=lambda c, ps: states.clear(), on_revoke=lambda c, ps: states.clear())
    conn = psycopg.connect(dsn)
    create_stages(conn)
    while not stop.is_set():
        msgs = consumer.consume(num_messages=500, timeout=0.1)
        if not msgs:
            continue
        batch, last = [], {}
        for msg in msgs:
            if msg.error() is not None:
                continue
            batch.append(parse_reading(orjson.loads(msg.value())["data"], kinds))
            last[msg.partition()] = msg.offset()
        by_sensor: dict[str, list[Reading]] = {}
        for r in batch:
            by_sensor.setdefault(r.sensor_id, []).append(r)
        with conn.transaction(), conn.cursor() as cur:
            new = [sid for sid in by_sensor if sid not in states]
            if new:  # warm-up, as the processor does: last seq, recent readings, raised alerts
                known = dict(cur.execute("SELECT sensor_id, last_seq FROM sensors WHERE sensor_id = ANY(%s)",
                                         (new,)).fetchall())
                for sid in new:
                    first = by_sensor[sid][0]
                    if sid not in known:
                        states[sid] = book.fresh(sid, first.kind)
                        continue
                    rows = cur.execute("SELECT seq, value, ts FROM readings WHERE sensor_id = %s ORDER BY seq DESC "
                                       "LIMIT %s", (sid, book.history(sid, first.kind))).fetchall()
                    history = [Reading(sid, first.kind, first.location, s, v, first.unit, t, "") for s, v, t in
                               reversed(rows)]
                    active = {rule: ActiveAlert(aid, sev, seq) for aid, rule, sev, seq in cur.execute(
                        "SELECT alert_id, rule, severity, reading_seq FROM alerts WHERE sensor_id = %s AND "
                        "state = 'raised'", (sid,)).fetchall()}
                    states[sid] = book.warm(sid, first.kind, history, active, known[sid])
            events = []
            for sid, group in by_sensor.items():
                state = states[sid]
                for r in sorted(group, key=lambda r: r.seq):
                    if r.seq > state.last_seq:
                        events.extend(state.observe(r))
            now = time.time()
            inserted = set(merge(cur, "readings", ((r.sensor_id, r.seq, r.kind, r.value, r.ts, r.anomaly)
                                                   for r in batch), (now, name)))
            sensors: dict[str, tuple[Any, ...]] = {}
            for r in batch:
                old = sensors.get(r.sensor_id)
                if old is None or r.seq > old[6]:
                    first_seen = min(old[4], r.ts) if old else r.ts
                    sensors[r.sensor_id] = (r.sensor_id, r.kind, r.location, r.unit, first_seen, r.ts, r.seq)
            stored: dict[str, int] = {}  # the running count the live view reads (mms_0003), as the processor keeps
            for sid, _seq in inserted:
                stored[sid] = stored.get(sid, 0) + 1
            merge(cur, "sensors", ((*row, stored.get(row[0], 0)) for row in sensors.values()))
            raised = [(e.alert_id, e.reading.sensor_id, e.rule, e.type, e.severity, e.verdict.value,
                       e.verdict.threshold, e.reading.seq, e.reading.ts, name) for e in events if e.state == "raised"]
            if raised:
                cur.executemany("INSERT INTO alerts (alert_id, sensor_id, rule, type, severity, state, value, "
                                "threshold, reading_seq, raised_at, processor) VALUES (%s, %s, %s, %s, %s, 'raised', "
                                "%s, %s, %s, %s, %s) ON CONFLICT (alert_id) DO NOTHING", sorted(raised))
            cleared = [(e.reading.ts, e.reading.seq, e.alert_id) for e in events if e.state == "cleared"]
            if cleared:
                cur.executemany("UPDATE alerts SET state = 'cleared', cleared_at = %s, cleared_seq = %s "
                                "WHERE alert_id = %s AND state = 'raised'", cleared)
            rollups: dict[tuple[str, int], list[float]] = {}
            for r in batch:
                if (r.sensor_id, r.seq) in inserted:
                    rollups.setdefault((r.sensor_id, int(r.ts // 60) * 60), []).append(r.value)
            merge(cur, "reading_rollups", ((s, m, len(v), min(v), max(v), sum(v)) for (s, m), v in rollups.items()))
        for e in events:
            producer.produce("bench-alerts", orjson.dumps(e.payload()), key=e.reading.sensor_id)
        producer.poll(0)
        consumer.store_offsets(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()])
    producer.flush(10)
    consumer.close()
    conn.close()
