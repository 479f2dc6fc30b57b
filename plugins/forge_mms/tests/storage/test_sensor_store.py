"""SensorStore on SQLite and PostgreSQL: one idempotent transaction per batch, warm-up reads, events, the
migration (up and down)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from alembic import command
from forge_core.storage import MigrationRegistry, current, upgrade

from forge_mms.anomaly import AlertTracker, Verdict, Window
from forge_mms.storage.sensor_store import SensorStore, minute_of, recompute_rollups
from forge_mms.storage.sensor_tables import alerts, reading_rollups, readings, sensors, system_events

from .conftest import MIGRATIONS

BIG = 3 * 10**9  # a third life of a simulated sensor: seqs above 2**31


def rows(engine, table, *order):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]


def events_for(make_reading):
    """temp-1: raised at 2, cleared at 4; temp-2: raised at 3 (still active)."""
    hot, hot2 = AlertTracker("hot", "threshold", 1), AlertTracker("hot", "threshold", 1)
    v = Verdict("warning", 90.0, 80.0, Window(2, 2, 0.0), "")
    calm = Verdict(None, 50.0, 80.0, Window(4, 4, 0.0), "")
    return (hot.update(v, make_reading(2, 90)) + hot2.update(v, make_reading(3, 91, sensor="temp-2"))
            + hot.update(calm, make_reading(4, 50)))


def test_a_batch_is_stored_once_however_often_it_comes(sensor_db, make_reading):
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    batch = [make_reading(s, 40 + s) for s in (1, 2, 3, 4)] + [make_reading(3, 9.5, sensor="temp-2")]
    events = events_for(make_reading)
    assert store.write_batch(batch, events, stored_at=5.0) == {("temp-1", s) for s in (1, 2, 3, 4)} | {("temp-2", 3)}
    first = [rows(sensor_db, t, *t.primary_key.columns) for t in (readings, sensors, alerts, reading_rollups)]
    # the same batch again, and a later one overlapping it (a redelivery after a rebalance)
    assert store.write_batch(batch, events, stored_at=9.0) == set()
    assert [rows(sensor_db, t, *t.primary_key.columns) for t in (readings, sensors, alerts, reading_rollups)] == first
    later = batch[2:4] + [make_reading(5, 45)]
    assert store.write_batch(later, [], stored_at=10.0) == {("temp-1", 5)}
    assert len(rows(sensor_db, readings, readings.c.seq)) == 6
    s = {r[0]: r for r in rows(sensor_db, sensors, sensors.c.sensor_id)}
    assert s["temp-1"][1:] == ("temperature", "line-1", "C", 1_800_000_000.0, 1_800_000_004.0, 5, 5)
    a = {r[0]: r for r in rows(sensor_db, alerts, alerts.c.alert_id)}
    assert a["temp-1:hot:2"][5:12] == ("cleared", 90.0, 80.0, 2, 1_800_000_001.0, 1_800_000_003.0, 4)
    assert a["temp-2:hot:3"][5] == "raised" and a["temp-2:hot:3"][10] is None


def test_rollups_are_exact_per_minute_and_match_a_recompute(sensor_db, make_reading):
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    values = [(seq, float(seq % 7)) for seq in range(1, 151)]  # 150 s: three minutes, one of them partly
    for at in range(0, 150, 40):  # batches that straddle minutes, each sent twice
        batch = [make_reading(seq, v) for seq, v in values[at:at + 40]]
        store.write_batch(batch, [], 1.0)
        store.write_batch(batch, [], 2.0)
    got = rows(sensor_db, reading_rollups, reading_rollups.c.minute)
    minutes = sorted({minute_of(1_800_000_000.0 + seq - 1) for seq, _ in values})
    expected = [("temp-1", m, len(vs), min(vs), max(vs), sum(vs)) for m in minutes
                for vs in [[v for seq, v in values if minute_of(1_800_000_000.0 + seq - 1) == m]]]
    assert got == expected
    with sensor_db.begin() as conn:
        conn.execute(reading_rollups.delete())
        recompute_rollups(conn, [("temp-1", m) for m in minutes])
    assert rows(sensor_db, reading_rollups, reading_rollups.c.minute) == expected


@pytest.mark.parametrize("offload", [False, True], ids=["commit-group", "a-transaction-a-batch"])
def test_a_rollup_holds_its_minutes_readings_whether_they_came_in_time_order_or_not(sensor_db, make_reading, offload):
    """The rollups of a write: per sensor and minute, the count, min, max and sum (in the readings' order) of
    exactly the readings whose minute_of is that minute; found by runs of the times when a sensor's come in time
    order (temp-1), one by one when not (temp-2); times at, just below and just past minutes' edges."""
    import math
    import random

    start = 1_800_000_000.0  # a minute's start
    times = [start - 0.5, start, start + 59.999999, math.nextafter(start + 60.0, 0.0), start + 60.0, start + 61.5,
             start + 61.5, start + 179.0, start + 180.0]
    shuffled = random.Random(5).sample(range(len(times)), len(times))
    batch = [make_reading(i + 1, float(i * 3 % 7) + 0.1, ts=times[i]) for i in range(len(times))]
    batch += [make_reading(i + 1, float(i * 5 % 11) + 0.1, sensor="temp-2", ts=times[i]) for i in shuffled]
    store = SensorStore(lambda: sensor_db, offload=offload, processor="p-0")
    store.write_batch(batch, [], 1.0)
    store.close()
    expected = []
    for sid in ("temp-1", "temp-2"):
        mine = [r for r in batch if r.sensor_id == sid]
        for minute in sorted({minute_of(r.ts) for r in mine}):
            vs = [r.value for r in mine if minute_of(r.ts) == minute]
            expected.append((sid, minute, len(vs), min(vs), max(vs), sum(vs)))
    assert rows(sensor_db, reading_rollups, reading_rollups.c.sensor_id, reading_rollups.c.minute) == expected


def test_big_seqs_and_a_clock_that_went_back(sensor_db, make_reading):
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    store.write_batch([make_reading(10, 1.0, ts=2_000.0)], [], 1.0)
    store.write_batch([make_reading(BIG + 1, 2.0, ts=1_000.0)], [], 2.0)  # new life, earlier clock
    assert rows(sensor_db, sensors, sensors.c.sensor_id)[0][4:] == (1_000.0, 1_000.0, BIG + 1, 2)


def test_warm_up_reads_history_active_and_unpublished_alerts(sensor_db, make_reading):
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    store.write_batch([make_reading(s, 40 + s) for s in range(1, 6)] + [make_reading(3, 9.5, sensor="temp-2")],
                      events_for(make_reading), 5.0)
    store.mark_published([("temp-2:hot:3", "raised")])
    warm = store.load_warm({"temp-1": 3, "temp-2": 10, "temp-9": 3})
    assert [r.seq for r in warm["temp-1"].history] == [3, 4, 5] and warm["temp-1"].last_seq == 5
    assert warm["temp-1"].active == {} and warm["temp-2"].active["hot"].alert_id == "temp-2:hot:3"
    owed = [(m["alert_id"], m["state"], m["reading_seq"]) for m in warm["temp-1"].unpublished]
    assert owed == [("temp-1:hot:2", "raised", 2), ("temp-1:hot:2", "cleared", 4)], "never published: both"
    assert warm["temp-2"].unpublished == [] and warm["temp-9"].last_seq == 0 and warm["temp-9"].history == []
    store.mark_published([("temp-1:hot:2", "raised"), ("temp-1:hot:2", "cleared")])
    assert store.load_warm({"temp-1": 0})["temp-1"].unpublished == []


def test_system_events_and_the_thread_under_a_real_clock(sensor_db):
    store = SensorStore(lambda: sensor_db, offload=True, processor="p-0")
    detail = {"group": "sensor-processors", "partitions": [["sensor-data", 0], ["sensor-data", 2]]}
    asyncio.run(store.call(store.record_event, 12.5, "partitions_assigned", "p-0", detail))
    (_id, at, kind, source, stored), = rows(sensor_db, system_events, system_events.c.id)
    assert (at, kind, source, stored) == (12.5, "partitions_assigned", "p-0", detail)
    # inline (SQLite: the driver's cursor) the row is the one SQLAlchemy's insert writes, JSON text and all
    inline = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    status = {"group": "g", "lag": None, "held": [], "batch_ms": {"p50": 0.17, "max": 13.2}, "readings": 9,
              "name": "é \"x\""}
    inline.record_event(13.0, "consumer_status", "p-0", status)
    inline.close()
    with sensor_db.begin() as conn:
        conn.execute(system_events.insert(), {"at": 13.0, "kind": "consumer_status", "source": "p-0",
                                              "detail": status})
        texts = conn.execute(sa.text("SELECT at, kind, source, CAST(detail AS TEXT) FROM system_events "
                                     "WHERE kind = 'consumer_status' ORDER BY id")).all()
    assert len(texts) == 2 and texts[0] == texts[1]
    assert rows(sensor_db, system_events, system_events.c.id)[1][4] == status


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def test_the_migrations_go_up_after_mms_0001_and_down_again(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path}/m.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    registry = MigrationRegistry(include_core=False)
    registry.add("mms", MIGRATIONS, plugin="forge-mms")
    engine = sa.create_engine(url)
    upgrade(engine, registry, target="mms_0001")
    assert "readings" not in sa.inspect(engine).get_table_names()
    upgrade(engine, registry, target="mms_0002")
    with engine.begin() as conn:  # rows stored before mms_0003: their count is backfilled
        conn.execute(sensors.insert().values(sensor_id="temp-1", kind="temperature", location="l", unit="C",
                                             first_seen=1.0, last_seen=2.0, last_seq=2))
        conn.execute(readings.insert(), [{"sensor_id": "temp-1", "seq": s, "kind": "temperature", "value": 1.0,
                                          "ts": 1.0, "stored_at": 1.0, "processor": "p"} for s in (1, 2)])
    upgrade(engine, registry)
    assert current(engine, registry)["mms"] == "mms_0005"
    capacity_columns = {"free_elsewhere", "orders_fit", "capacity_detail"}  # mms_0005
    assert capacity_columns <= {c["name"] for c in sa.inspect(engine).get_columns("failover_events")}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sensors.c.stored)).scalar_one() == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(readings)).scalar_one() == 2, "mms_0004 keeps them"
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("readings")}
    assert "ix_readings_stored_at" in indexes and "ix_readings_ts" not in indexes, indexes
    tables = set(sa.inspect(engine).get_table_names())
    assert {"sensors", "readings", "alerts", "system_events", "reading_rollups", "heartbeats"} <= tables
    assert {c["name"] for c in sa.inspect(engine).get_columns("readings")} == {
        "sensor_id", "seq", "kind", "value", "ts", "stored_at", "processor", "anomaly"}
    cfg = registry.config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "mms_0003")
    assert "ix_readings_ts" in {i["name"] for i in sa.inspect(engine).get_indexes("readings")}, "mms_0004's down"
    assert not capacity_columns & {c["name"] for c in sa.inspect(engine).get_columns("failover_events")}, "mms_0005's"
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "mms_0001")
    tables = set(sa.inspect(engine).get_table_names())
    assert "readings" not in tables and "heartbeats" in tables
    engine.dispose()


def test_each_sensor_keeps_the_count_of_its_readings_stored_once(sensor_db, make_reading):
    """sensors.stored: the readings each transaction inserted, so a redelivery adds nothing and the sum over
    the sensors is the readings table's count (what a view reads instead of counting the table)."""
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    store.write_batch([make_reading(s, 40.0) for s in (1, 2, 3)] + [make_reading(1, 9.0, sensor="temp-2")], [], 1.0)
    store.write_batch([make_reading(s, 40.0) for s in (2, 3, 4)], [], 2.0)  # 2 and 3 again
    store.close()
    with sensor_db.connect() as conn:
        assert dict(conn.execute(sa.select(sensors.c.sensor_id, sensors.c.stored)).all()) == {"temp-1": 4, "temp-2": 1}
        assert conn.execute(sa.select(sa.func.count()).select_from(readings)).scalar_one() == 5


def test_inline_the_connection_is_kept_between_batches_and_given_back_after_an_error(sensor_db, make_reading):
    """Under a virtual clock (offload=False) one connection serves every batch; a failing transaction gives it
    back (nothing of it stored) and the next batch takes a fresh one; close() gives it back."""
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    assert store.write_batch([make_reading(1, 41)], [], stored_at=1.0) == {("temp-1", 1)}
    held = store._held
    assert held is not None and store.write_batch([make_reading(2, 42)], [], stored_at=2.0) == {("temp-1", 2)}
    assert store._held is held, "the same connection for the next batch"
    broken = make_reading(3, 43)
    object.__setattr__(broken, "kind", None)  # NOT NULL: the transaction fails on its first statement
    with pytest.raises(sa.exc.IntegrityError):
        store.write_batch([make_reading(4, 44), broken], [], stored_at=3.0)
    assert store._held is None and held.closed
    assert [r[1] for r in rows(sensor_db, readings, readings.c.seq)] == [1, 2], "the failed batch left nothing"
    assert store.write_batch([make_reading(3, 43)], [], stored_at=4.0) == {("temp-1", 3)}
    assert store._held is not None and store._held is not held
    store.close()
    assert store._held is None


def test_inline_writes_share_a_transaction_and_a_failed_one_commits_the_earlier_again(sensor_db, make_reading):
    """group=10: batches share the open transaction (what each returns is what it inserted, a repeat is
    refused at once); a failing batch rolls back, the group's earlier batches are written again and
    committed, the failed one left nothing; a full group and close() commit."""
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0", group=10)
    assert store.write_batch([make_reading(1, 41), make_reading(2, 42)], [], stored_at=1.0) == {("temp-1", 1),
                                                                                              ("temp-1", 2)}
    assert store.write_batch([make_reading(2, 42)], [], stored_at=2.0) == set(), "refused in the open transaction"
    store.mark_published([])
    assert store.commits is not None and store.commits.units == 3 and store.commits.commits == 0
    broken = make_reading(3, 43)
    object.__setattr__(broken, "kind", None)  # NOT NULL: the transaction fails
    with pytest.raises(sa.exc.IntegrityError):
        store.write_batch([make_reading(4, 44), broken], [], stored_at=3.0)
    assert store.commits.pending == [] and store.commits.commits == 1, "the earlier writes, committed again"
    with sensor_db.connect() as conn:
        assert conn.execute(sa.select(readings.c.seq).order_by(readings.c.seq)).scalars().all() == [1, 2]
        count, low, high = conn.execute(sa.select(reading_rollups.c.count, reading_rollups.c.min,
                                                  reading_rollups.c.max)).one()
        assert (count, low, high) == (2, 41, 42), "rollups of the rewritten batch added once"
    for seq in range(3, 13):
        store.write_batch([make_reading(seq, 40 + seq)], [], stored_at=4.0)
    assert store.commits.commits == 2 and store.commits.units == 0, "ten readings: committed"
    store.write_batch([make_reading(13, 53)], [], stored_at=5.0)
    store.close()
    assert store._held is None and len(rows(sensor_db, readings, readings.c.seq)) == 13


def test_one_reading_at_a_time_stores_what_a_batch_stores(sensor_db, make_reading, tmp_path):
    """SQLite's path for a batch of one reading (the memory bus's) writes the same rows as a batch does;
    a failing one raises SQLAlchemy's error and leaves nothing."""
    from .conftest import migrated

    other = migrated(f"sqlite:///{tmp_path}/batch.db")
    values = [(1, 41.0), (2, 42.0), (3, 43.0), (61, 44.0)]  # two minutes
    alone, batched = (SensorStore(lambda e=e: e, offload=False, processor="p-0") for e in (sensor_db, other))
    got = [alone.write_batch([make_reading(s, v)], [], 1.0) for s, v in values + [(2, 42.0)]]
    assert got == [{("temp-1", 1)}, {("temp-1", 2)}, {("temp-1", 3)}, {("temp-1", 61)}, set()]
    assert batched.write_batch([make_reading(s, v) for s, v in values], [], 1.0) == {("temp-1", s) for s, _ in values}
    broken = make_reading(5, 45.0)
    object.__setattr__(broken, "kind", None)
    with pytest.raises(sa.exc.IntegrityError):
        alone.write_batch([broken], [], 1.0)
    alone.close()
    batched.close()
    for table, order in ((readings, readings.c.seq), (sensors, sensors.c.sensor_id),
                         (reading_rollups, reading_rollups.c.minute)):
        assert rows(sensor_db, table, order) == rows(other, table, order), table.name
    assert rows(sensor_db, sensors, sensors.c.sensor_id)[0][-1] == 4
    other.dispose()


def test_a_batch_beyond_one_insert_returns_exactly_what_it_inserted(sensor_db, make_reading):
    """A batch of more than one statement's rows_per_statement readings (PostgreSQL: 500, by COPY and one INSERT
    ... SELECT ... RETURNING; SQLite: one executemany, told by rowcount and the newest rowids), half of it stored before,
    returns the new half only and stores every reading once."""
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    with sensor_db.connect() as conn:
        driver = store._sql(conn).driver
    per = driver["readings"].rows_per_statement if driver is not None else 500  # PostgreSQL: the batch_max
    size = per * 2 + 7
    earlier = [make_reading(s, float(s % 5)) for s in range(1, size + 1, 2)]
    assert store.write_batch(earlier, [], 1.0) == {("temp-1", r.seq) for r in earlier}
    everything = [make_reading(s, float(s % 5)) for s in range(size, 0, -1)]  # out of order, both halves
    assert store.write_batch(everything, [], 2.0) == {("temp-1", s) for s in range(2, size + 1, 2)}
    store.close()
    assert [r[1] for r in rows(sensor_db, readings, readings.c.seq)] == list(range(1, size + 1))
    assert rows(sensor_db, sensors, sensors.c.sensor_id)[0][-2:] == (size, size)  # last_seq, stored


def test_a_batch_partly_stored_before_returns_exactly_what_it_added(sensor_db, make_reading):
    """SQLite's INSERT runs without RETURNING (executemany): a batch the rowcount says was partly stored before is
    told by the newest rowids. Over random mixes of stored and new readings of two sensors, out of order, a
    reading twice in one batch, what a write returns is exactly what it added, and each reading is stored once."""
    import random

    rng = random.Random(5)
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    stored: set[tuple[str, int]] = set()
    for round_ in range(12):
        keys = [(sid, seq) for sid in ("temp-1", "temp-2") for seq in rng.sample(range(1, 60), rng.randint(1, 12))]
        keys += rng.sample(keys, rng.randint(0, 2))  # a reading twice in one batch
        rng.shuffle(keys)
        batch = [make_reading(seq, float(seq), sensor=sid) for sid, seq in keys]
        assert store.write_batch(batch, [], float(round_)) == set(keys) - stored, round_
        stored |= set(keys)
    store.close()
    assert sorted((r[0], r[1]) for r in rows(sensor_db, readings)) == sorted(stored)


def test_sqlite_a_table_at_the_largest_rowid_raises_rather_than_guess(sensor_db, make_reading):
    """Once ``readings`` holds SQLite's largest rowid, new rows get random rowids: a batch partly stored before
    cannot be told by the newest rowids, and the write raises (naming the statement); a batch all new is told by
    its rowcount alone."""
    from forge_core.storage import DriverSqlError

    from forge_mms.storage.sensor_store import MAX_ROWID

    if sensor_db.dialect.name != "sqlite":
        pytest.skip("SQLite's rowids")
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    assert store.write_batch([make_reading(1, 1.0), make_reading(2, 2.0)], [], 1.0) == {("temp-1", 1), ("temp-1", 2)}
    with sensor_db.begin() as conn:
        conn.execute(sa.text("UPDATE readings SET rowid = :top WHERE seq = 2"), {"top": MAX_ROWID})
    assert store.write_batch([make_reading(3, 3.0), make_reading(4, 4.0)], [], 2.0) == {("temp-1", 3), ("temp-1", 4)}
    with pytest.raises(DriverSqlError, match="forge_mms sensor store: readings"):
        store.write_batch([make_reading(1, 1.0), make_reading(5, 5.0)], [], 3.0)
    assert store.write_batch([make_reading(1, 1.0), make_reading(2, 2.0)], [], 4.0) == set()  # none added: told


def test_a_driver_without_a_rowcount_raises_rather_than_report_nothing_stored(sensor_db):
    """sqlite3 counts an executemany's inserted rows; a driver answering -1 (no count) must not read as 'none
    inserted' (the sensors' stored counts and the rollups would miss the batch): the store raises, naming it."""
    from forge_core.storage import DriverSqlError

    from forge_mms.storage.sensor_store import _inserted_last

    if sensor_db.dialect.name != "sqlite":
        pytest.skip("SQLite's path")
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    with sensor_db.connect() as conn:
        statement = store._sql(conn).driver["readings"]
    with pytest.raises(DriverSqlError, match="no rowcount"):
        _inserted_last(None, statement, -1, {("temp-1", 1)})


def test_sqlite_statements_for_the_driver_are_compiled_from_core(sensor_db):
    """On SQLite the readings, sensors and rollups statements go to the driver's cursor, compiled from the Core
    statements (no literal values: each takes all of its parameters from the row)."""
    store = SensorStore(lambda: sensor_db, offload=False, processor="p-0")
    with sensor_db.connect() as conn:
        sql = store._sql(conn)
    if sensor_db.dialect.name != "sqlite":
        assert sql.driver is None
        return
    assert sql.driver is not None and set(sql.driver) == {"readings", "readings_unlabelled", "sensors", "rollups"}
    unlabelled = sql.driver["readings_unlabelled"]  # anomaly left out (NULL): sqlite3 binds no None
    assert unlabelled.keys == unlabelled.fields == ("sensor_id", "seq", "kind", "value", "ts", "stored_at", "processor")
    assert "anomaly" not in unlabelled.sql and unlabelled.sql.count("(?, ?, ?, ?, ?, ?, ?)") == 1
    readings_sql = sql.driver["readings"]
    assert readings_sql.keys == ("sensor_id", "seq", "kind", "value", "ts", "stored_at", "processor", "anomaly")
    row = tuple(range(8))  # the store's row tuples go to executemany as they are (no copy, no picker)
    assert readings_sql.fields == readings_sql.keys and readings_sql.params(row) is row
    assert readings_sql.sql.count("(?, ?, ?, ?, ?, ?, ?, ?)") == 1 and "RETURNING" not in readings_sql.sql
    assert sql.driver["rollups"].keys == ("sensor_id", "minute", "count", "min", "max", "sum")


def test_a_group_merges_sensors_and_rollups_into_what_a_transaction_per_batch_writes(sensor_db, make_reading,
                                                                                     tmp_path):
    """Inline (a commit group), the sensors and rollups rows of the group's batches are written once before
    each COMMIT: the tables equal those of a transaction per batch (a real clock's path), over batches of one
    and of several sensors, minutes, a redelivery, a later life's seqs and a failed batch whose rollback
    rewrites the group's earlier ones (their rows added once)."""
    from .conftest import migrated

    other = migrated(f"sqlite:///{tmp_path}/per_batch.db")
    grouped = SensorStore(lambda: sensor_db, offload=False, processor="p-0", group=7)
    per_batch = SensorStore(lambda: other, offload=True, processor="p-0")
    batches = [[make_reading(1, 41.0)], [make_reading(2, 42.5), make_reading(1, 9.0, sensor="temp-2")],
               [make_reading(s, float(s % 9)) for s in range(3, 70)] + [make_reading(2, 8.0, sensor="temp-2")],
               [make_reading(2, 42.5)], [make_reading(BIG + 1, 5.0, ts=1_000.0)], [make_reading(70, 1.0)]]
    for batch in batches:
        assert grouped.write_batch(batch, [], 1.0) == per_batch.write_batch(batch, [], 1.0)
    broken = make_reading(71, 2.0)
    object.__setattr__(broken, "kind", None)
    for store in (grouped, per_batch):
        with pytest.raises(sa.exc.IntegrityError):
            store.write_batch([make_reading(72, 3.0), broken], [], 1.0)
    assert grouped.write_batch([make_reading(73, 4.0)], [], 1.0) == {("temp-1", 73)}
    per_batch.write_batch([make_reading(73, 4.0)], [], 1.0)
    grouped.close()
    for table, order in ((readings, (readings.c.sensor_id, readings.c.seq)), (sensors, (sensors.c.sensor_id,)),
                         (reading_rollups, (reading_rollups.c.sensor_id, reading_rollups.c.minute))):
        assert rows(sensor_db, table, *order) == rows(other, table, *order), table.name
    other.dispose()
