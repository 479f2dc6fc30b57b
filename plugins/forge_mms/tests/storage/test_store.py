"""MonitorStore: beats in batches, retention, status upserts, events; off the loop under a real clock."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from forge_mms.monitoring.beats import BeatHistory
from forge_mms.storage.store import BEAT_COLUMNS, MonitorStore, beat_values
from forge_mms.storage.tables import factory_status, failover_events, heartbeats, metadata


def engine(tmp_path):
    made = sa.create_engine(f"sqlite:///{tmp_path / 'mms.db'}")
    metadata.create_all(made)
    return made


def some_beats(n, start=0.0):
    history = BeatHistory(1e9, late_after=1.5)
    return [history.add("f1", start + t, {"timestamp": start + t, "metrics": {"errors": t // 3, "cpu": 1.0}})
            for t in range(n)]


def count(made, table):
    with made.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_beats_are_written_in_batches_and_pruned_by_age(tmp_path):
    made = engine(tmp_path)
    store = MonitorStore(lambda: made, offload=False, batch_size=4)
    full = [store.add_beat(b) for b in some_beats(10)]
    assert full.index(True) == 3, "the 4th beat fills a batch"
    assert asyncio.run(store.flush()) == 10 and store.buffered == 0 and count(made, heartbeats) == 10
    with made.connect() as conn:
        failed = conn.execute(sa.select(heartbeats.c.failed).order_by(heartbeats.c.id)).scalars().all()
    assert failed == [False, False, False, True, False, False, True, False, False, True]
    assert asyncio.run(store.prune(cutoff=6.0)) == 6 and count(made, heartbeats) == 4


def test_a_failing_database_keeps_the_beats_buffered_and_bounded(tmp_path):
    made = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    store = MonitorStore(lambda: made, offload=False, batch_size=2, max_buffered=5)
    for beat in some_beats(7):
        store.add_beat(beat)
    assert asyncio.run(store.flush()) == 0
    assert store.buffered == 5 and store.stats["beats_dropped"] == 2 and store.stats["errors"] == 1
    metadata.create_all(made)
    assert asyncio.run(store.flush()) == 5 and count(made, heartbeats) == 5


def test_status_upsert_events_and_the_reported_statuses_off_the_loop(tmp_path):
    made = engine(tmp_path)
    store = MonitorStore(lambda: made, offload=True, batch_size=100)  # a real clock: a worker thread

    async def scenario():
        row = {"status": "UP", "reason": "discovered", "since": 1.0, "risk": "LOW", "error_rate": 0.0,
               "updated_at": 1.0}
        await store.save_status("f1", row)
        await store.save_status("f1", {**row, "status": "DOWN", "reported_status": "DOWN", "reported_epoch": 3})
        await store.save_status("f2", row)
        await store.add_event({"factory_id": "f1", "status": "DOWN", "reason": "silent", "epoch": 3, "lease": "mms",
                               "attempts": 2, "outcome": "accepted", "detail": "", "orders_moved": 4, "at": 5.0,
                               "holder": "m"})
        for beat in some_beats(3):
            store.add_beat(beat)
        await store.flush()
        return await store.reported()

    assert asyncio.run(scenario()) == {"f1": "DOWN"}
    assert count(made, factory_status) == 2 and count(made, failover_events) == 1 and count(made, heartbeats) == 3


def test_without_storage_every_write_is_skipped():
    store = MonitorStore(None, offload=False, batch_size=1)
    assert store.add_beat(some_beats(1)[0]) is False and store.buffered == 0
    assert asyncio.run(store.reported()) == {}


def test_beats_written_by_the_driver_read_back_as_sqlalchemys_insert_wrote_them(sensor_db):
    """The beat flush runs the driver's executemany on the insert's text (SQLite and PostgreSQL): the
    rows are those SQLAlchemy's own insert of the same beats writes, column by column."""
    beats = some_beats(7, start=1_800_000_000.25)
    store = MonitorStore(lambda: sensor_db, offload=False, batch_size=100)
    for beat in beats:
        store.add_beat(beat)
    expected = [dict(zip(BEAT_COLUMNS, beat_values(b), strict=True)) for b in beats]
    assert expected[0]["received_at"] == 1_800_000_000.25 and expected[3]["failed"] is True
    assert asyncio.run(store.flush()) == 7
    columns = [heartbeats.c[name] for name in BEAT_COLUMNS]
    with sensor_db.connect() as conn:
        written = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(heartbeats.c.id))]
    with sensor_db.begin() as conn:
        conn.execute(sa.delete(heartbeats))
        conn.execute(heartbeats.insert(), expected)
    with sensor_db.connect() as conn:
        by_sqlalchemy = [tuple(r) for r in conn.execute(sa.select(*columns).order_by(heartbeats.c.id))]
    assert written == by_sqlalchemy
    assert [r[-1] for r in written] == [False, False, False, True, False, False, True]
    assert written[0][0] == "f1" and written[0][1] == 1_800_000_000.25


def test_a_status_row_and_its_event_are_one_transaction(tmp_path):
    """A report's end writes its status row and its failover event together: one commit, and a failing
    event insert takes the row's update with it (nothing half-written), logged and counted."""
    made = engine(tmp_path)
    store = MonitorStore(lambda: made, offload=False, batch_size=100)
    commits = []
    sa.event.listen(made, "commit", lambda conn: commits.append(1))
    row = {"status": "DOWN", "reason": "silent", "since": 1.0, "risk": "LOW", "error_rate": 0.0, "updated_at": 1.0,
           "reported_status": "DOWN", "reported_epoch": 3, "reported_at": 2.0}
    event = {"factory_id": "f1", "status": "DOWN", "reason": "silent", "epoch": 3, "lease": "mms", "attempts": 1,
             "outcome": "accepted", "detail": "", "orders_moved": 2, "at": 2.0, "holder": "m"}
    asyncio.run(store.save_status("f1", row, event=event))
    assert len(commits) == 1 and count(made, factory_status) == 1 and count(made, failover_events) == 1

    asyncio.run(store.save_status("f1", {**row, "status": "UP"}, event={**event, "epoch": None, "lease": None}))
    assert store.stats["errors"] == 1, "the event's NOT NULL columns refuse it"
    with made.connect() as conn:
        assert conn.execute(sa.select(factory_status.c.status)).scalar_one() == "DOWN", "the row's update rolled back"
    assert count(made, failover_events) == 1


def test_flushes_at_once_off_the_loop_write_each_beat_once(tmp_path):
    made = engine(tmp_path)
    store = MonitorStore(lambda: made, offload=True, batch_size=4)  # a real clock's: writes in a thread
    for beat in some_beats(10):
        store.add_beat(beat)

    async def together() -> list[int]:
        return list(await asyncio.gather(store.flush(), store.flush(), store.flush()))

    written = asyncio.run(together())  # raised IndexError (pop from an empty deque) before the flush lock
    assert sum(written) == 10 and store.buffered == 0
    with made.connect() as conn:
        ats = conn.execute(sa.select(heartbeats.c.received_at).order_by(heartbeats.c.id)).scalars().all()
    assert len(ats) == 10 and len(set(ats)) == 10, "each beat written once"


def test_status_rows_and_events_on_the_driver_read_back_as_sqlalchemys_statements_wrote_them(sensor_db):
    """The status upsert (update, else insert) and the failover event run on the driver's cursor (SQLite and
    PostgreSQL): the rows equal those SQLAlchemy's own update/insert of the same values write, column by
    column; a second save of a factory updates its row (rowcount), a new factory gets one."""
    store = MonitorStore(lambda: sensor_db, offload=False, batch_size=100)
    first = {"status": "UP", "reason": "discovered", "since": 1_800_000_000.5, "risk": "LOW", "error_rate": 0.25,
             "updated_at": 1_800_000_000.5}
    then = {**first, "status": "DOWN", "reason": "silent", "reported_status": "DOWN", "reported_epoch": 2**40,
            "reported_at": 1_800_000_003.75, "updated_at": 1_800_000_003.75}
    event = {"factory_id": "f1", "status": "DOWN", "reason": "silent 3.0 s", "epoch": 2**40, "lease": "mms",
             "attempts": 2, "outcome": "accepted", "detail": "", "orders_moved": 4, "at": 1_800_000_003.75,
             "holder": "mms-0"}
    asyncio.run(store.save_status("f1", first))
    asyncio.run(store.save_status("f2", first))
    asyncio.run(store.save_status("f1", then, event=event))
    assert store.stats["errors"] == 0

    def read():
        with sensor_db.connect() as conn:
            statuses = [tuple(r) for r in conn.execute(sa.select(factory_status).order_by(factory_status.c.factory_id))]
            events = [tuple(r)[1:] for r in conn.execute(sa.select(failover_events))]
        return statuses, events

    written = read()
    with sensor_db.begin() as conn:
        conn.execute(sa.delete(factory_status))
        conn.execute(sa.delete(failover_events))
        conn.execute(factory_status.insert(), {"factory_id": "f1", **then})
        conn.execute(factory_status.insert(), {"factory_id": "f2", **first})
        conn.execute(failover_events.insert(), [event])
    assert written == read()
    assert [r[1] for r in written[0]] == ["DOWN", "UP"] and written[0][0][7] == 2**40 and len(written[1]) == 1
