"""SensorStore's readings insert: PostgreSQL's COPY into a temp table (sensor_copy) stores and reports what the
INSERT ... ON CONFLICT DO NOTHING RETURNING did, field for field; SQLite's path alongside where it applies."""

from __future__ import annotations

import math
import threading

import pytest
import sqlalchemy as sa

from forge_mms.anomaly import Reading
from forge_mms.storage.sensor_store import SensorStore
from forge_mms.storage.sensor_tables import reading_rollups, readings, sensors


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(readings).order_by(readings.c.sensor_id, readings.c.seq))]


def odd(seq: int, value: float, sensor: str, anomaly: str | None) -> Reading:
    ts = 1_800_000_000.123456789 + seq
    return Reading(sensor, "temperature", "Halle ü/2", seq, value, "°C", ts, "", anomaly)


@pytest.mark.parametrize("offload", [True, False])
def test_odd_fields_round_trip_exactly(sensor_db, offload):
    """Unicode and quoting characters, tabs and backslashes (COPY's text escapes), big seqs, extreme floats and a
    label or none: read back as written."""
    store = SensorStore(lambda: sensor_db, offload=offload, processor="p-\u00e9\t\\1")
    names = ["温度/ofen-1", "a\tb\\c\nd", "quote'\"; --", "x" * 200]
    values = [-0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    batch = [odd(seq, value, name, label) for name in names
             for seq, value, label in zip((1, 2**62, 3, 2**31 + 1), values, ("spike", None, "\u2603", None), strict=True)]
    assert store.write_batch(batch, [], stored_at=1.5) == {(r.sensor_id, r.seq) for r in batch}
    store.close()
    expected = sorted((r.sensor_id, r.seq, r.kind, r.value, r.ts, 1.5, "p-\u00e9\t\\1", r.anomaly) for r in batch)
    got = stored(sensor_db)
    assert got == expected
    if sensor_db.dialect.name == "postgresql":  # SQLite keeps a -0.0 as 0
        assert [math.copysign(1, row[3]) for row in got if row[3] == 0] == [-1.0] * len(names)


def test_nan_round_trips_on_postgresql(sensor_db):
    if sensor_db.dialect.name != "postgresql":
        pytest.skip("SQLite stores a NaN as NULL (readings.value is NOT NULL)")
    store = SensorStore(lambda: sensor_db, offload=True, processor="p-0")
    assert store.write_batch([odd(1, math.nan, "n-1", None), odd(2, 1.0, "n-1", None)], [], 1.0) == {
        ("n-1", 1), ("n-1", 2)}
    assert math.isnan(stored(sensor_db)[0][3])


@pytest.mark.parametrize("offload", [True, False])
def test_a_key_twice_in_a_batch_is_stored_once_as_its_first_reading_and_reported_once(sensor_db, offload):
    """Stored, returned, counted in sensors.stored and rolled up once (the rollups added each copy before)."""
    store = SensorStore(lambda: sensor_db, offload=offload, processor="p-0")
    first, again = odd(7, 1.0, "s-1", "spike"), odd(7, 2.0, "s-1", None)
    batch = [odd(9, 3.0, "s-1", None), first, again, odd(8, 4.0, "s-1", None), first]
    assert store.write_batch(batch, [], 1.0) == {("s-1", 7), ("s-1", 8), ("s-1", 9)}
    assert store.write_batch([again, odd(10, 5.0, "s-1", None)], [], 2.0) == {("s-1", 10)}  # across batches
    store.close()
    assert [(row[1], row[3], row[7]) for row in stored(sensor_db)] == [
        (7, 1.0, "spike"), (8, 4.0, None), (9, 3.0, None), (10, 5.0, None)]
    with sensor_db.connect() as conn:  # stored and the rollup count each reading once
        assert conn.execute(sa.select(sensors.c.stored, sensors.c.last_seq)).one() == (4, 10)
        assert conn.execute(sa.select(sa.func.sum(reading_rollups.c.count), sa.func.sum(reading_rollups.c.sum))
                            ).one() == (4, 13.0)


@pytest.mark.servers
def test_a_rolled_back_batch_takes_the_temp_table_with_it_and_the_next_makes_it_again(postgres_url):
    """The first batch on a connection makes the temp table in its transaction: a batch that fails there (a
    sensor id too long for readings) rolls the CREATE back; the next one, on the same connection, makes it again."""
    from .conftest import migrated

    engine = migrated(postgres_url)
    try:
        store = SensorStore(lambda: engine, offload=True, processor="p-0")
        with pytest.raises(sa.exc.DataError):
            store.write_batch([odd(1, 1.0, "x" * 201, None)], [], 1.0)
        assert store.write_batch([odd(1, 1.0, "ok", None)], [], 2.0) == {("ok", 1)}
        assert engine.pool.checkedin() == 1  # one connection: the failed batch's, reused
    finally:
        engine.dispose()


@pytest.mark.servers
def test_two_processors_racing_over_the_same_sensors_store_each_reading_once(postgres_url):
    """Two stores (two processors during a rebalance) writing overlapping batches at once, the batches in
    opposite orders: no deadlock (rows locked in key order), each reading stored once and reported by one."""
    from .conftest import migrated

    engine = migrated(postgres_url)
    keys = [(f"s-{n % 5}", seq) for n, seq in enumerate(range(1, 401))]
    reported: dict[str, set[tuple[str, int]]] = {"a": set(), "b": set()}
    errors: list[BaseException] = []

    def run(name: str, order: list[tuple[str, int]]) -> None:
        store = SensorStore(lambda: engine, offload=True, processor=name)
        try:
            for at in range(0, len(order), 50):
                reported[name] |= store.write_batch([odd(seq, 1.0, sid, None) for sid, seq in order[at:at + 100]],
                                                    [], 1.0)
        except BaseException as exc:  # noqa: BLE001 (raised below, in the test's thread)
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=("a", keys)), threading.Thread(target=run, args=("b", keys[::-1]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert not reported["a"] & reported["b"]
        assert reported["a"] | reported["b"] == set(keys)
        assert sorted((row[0], row[1]) for row in stored(engine)) == sorted(keys)
    finally:
        engine.dispose()
