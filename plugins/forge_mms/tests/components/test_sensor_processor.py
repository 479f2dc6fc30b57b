"""mms.sensor_processor on the testing kit (virtual time, memory transport, SQLite): stored once, alerts
published and stored, malformed readings dead-lettered, redelivered batches, warm-up after sensors move to
another processor, partition events, a database outage."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from forge_core import MessageRejected, Redeliver
from forge_core.transport import PartitionChange

HOT = [70, 71, 85, 90, 105, 104, 99, 97, 96, 95, 79, 77, 76, 75, 74]
#: Two processors on one database, each on its own topic: moving a sensor from one topic to the other is
#: what a partition moving to another member of the group does to it.
TWO = {"other": {"type": "mms.sensor_processor", "params": {"topic": "sensor-data-b"}}}


def alerts_sent(plant):
    return [(e.payload["alert_id"], e.payload["state"]) for e in plant.sent(type="mms.sensor_alert")]


def test_readings_are_judged_stored_and_alerts_published_and_stored(sensor_plant, send, rows):
    plant = sensor_plant()
    send(plant, "temp-1", "temperature", HOT)
    sent = alerts_sent(plant)
    assert ("temp-1:temperature:3", "raised") in sent and ("temp-1:temperature:5", "raised") in sent
    assert sent.count(("temp-1:temperature:5", "cleared")) == 1
    first = plant.sent(type="mms.sensor_alert")[0]
    assert first.key == "temp-1" and first.topic == "alerts"
    assert rows(plant, "SELECT count(*) FROM readings") == [(15,)]
    stored = rows(plant, "SELECT alert_id, state, published FROM alerts ORDER BY reading_seq, alert_id")
    assert {(a, s) for a, s, _p in stored} == {(a, "cleared") for a, s in sent if s == "raised"}
    assert all(p == "cleared" for _a, _s, p in stored), "every state on the bus is marked published"
    report = plant.component("processor").report()
    assert (report["stored"], report["alerts_raised"], report["alerts_cleared"]) == (15, 5, 5)


@pytest.mark.parametrize(("change", "field"), [({"kind": "pressure", "unit": "bar"}, "/kind"),
                                               ({"unit": "F"}, "/unit")])
def test_a_reading_the_rules_cannot_judge_is_dead_lettered_with_its_field(sensor_plant, send, payload, rows,
                                                                          change, field):
    plant = sensor_plant()
    send(plant, "temp-1", "temperature", [70, 71])
    plant.publish("sensor-data", "mms.sensor_reading", {**payload("temp-1", "temperature", 3, 72.0), **change})
    send(plant, "temp-1", "temperature", [73], first_seq=4)
    (letter,) = plant.dead_letters
    assert letter.reason == "invalid" and letter.component == "processor" and letter.errors[0]["pointer"] == field
    assert "reading not judged" in letter.detail
    assert rows(plant, "SELECT seq FROM readings ORDER BY seq") == [(1,), (2,), (4,)], "the others go on"
    assert plant.state("processor") == "running"


def test_a_non_finite_value_is_refused_before_or_by_the_processor(sensor_plant, payload):
    plant = sensor_plant()
    with pytest.raises(MessageRejected):  # JSON has no Infinity: the schema check refuses it at the publisher
        plant.publish("sensor-data", "mms.sensor_reading", payload("temp-1", "temperature", 1, float("inf")))
    assert [d.reason for d in plant.dead_letters] == ["invalid"]
    plant.publish("sensor-data", "mms.sensor_reading", payload("temp-1", "temperature", 1, 20.0))
    envelope = plant.sent(type="mms.sensor_reading")[0]
    envelope.payload["value"] = float("nan")  # as a transport that hands over parsed NaN would
    processor = plant.component("processor")
    plant.clock.run(processor.on_readings([envelope]))
    assert plant.dead_letters[-1].errors == [{"pointer": "/value", "message": "not a finite number: nan"}]


def test_a_redelivered_batch_stores_nothing_twice_and_raises_nothing_again(sensor_plant, send, rows):
    plant = sensor_plant()
    send(plant, "temp-1", "temperature", HOT)
    before = (alerts_sent(plant), rows(plant, "SELECT * FROM alerts ORDER BY alert_id"),
              rows(plant, "SELECT * FROM reading_rollups"))
    processor = plant.component("processor")
    batch = plant.sent(type="mms.sensor_reading")
    plant.clock.run(processor.on_readings(batch[2:12]))  # a batch again, whole
    plant.clock.run(processor.on_readings(batch))
    assert (alerts_sent(plant), rows(plant, "SELECT * FROM alerts ORDER BY alert_id"),
            rows(plant, "SELECT * FROM reading_rollups")) == before
    report = processor.report()
    assert report["redelivered_not_stored"] == 25 and report["stored"] == 15


@pytest.mark.servers
def test_on_postgresql_a_redelivered_batch_stores_nothing_twice(sensor_plant, send, rows, postgres_url):
    plant = sensor_plant(url=postgres_url)
    send(plant, "temp-1", "temperature", HOT)
    send(plant, "vib-1", "vibration", [2.0] * 5 + [9.0] * 12 + [2.0] * 14)
    before = (alerts_sent(plant), rows(plant, "SELECT * FROM alerts ORDER BY alert_id"),
              rows(plant, "SELECT * FROM reading_rollups ORDER BY sensor_id, minute"),
              rows(plant, "SELECT * FROM sensors ORDER BY sensor_id"))
    assert ("vib-1:vibration_rms:12", "raised") in before[0] and ("vib-1:stuck:15", "raised") in before[0]
    processor = plant.component("processor")
    plant.clock.run(processor.on_readings(plant.sent(type="mms.sensor_reading")))  # 46 readings, one batch
    assert (alerts_sent(plant), rows(plant, "SELECT * FROM alerts ORDER BY alert_id"),
            rows(plant, "SELECT * FROM reading_rollups ORDER BY sensor_id, minute"),
            rows(plant, "SELECT * FROM sensors ORDER BY sensor_id")) == before
    assert rows(plant, "SELECT count(*) FROM readings") == [(46,)]


def test_a_sensor_that_moves_to_another_processor_keeps_its_alert_and_clears_it_there(sensor_plant, send, rows):
    plant = sensor_plant(extra=TWO)
    send(plant, "temp-1", "temperature", [70, 71, 85, 90, 105])  # warning raised at 3, critical at 5
    # the sensor's partition moves; the new owner also gets the last two again (not committed by the old one)
    send(plant, "temp-1", "temperature", [90, 105, 104, 99, 70, 70, 70, 70], first_seq=4, topic="sensor-data-b")
    sent = alerts_sent(plant)
    assert sent.count(("temp-1:temperature:5", "raised")) == 1, "not raised again by the new owner"
    assert ("temp-1:temperature:5", "cleared") in sent
    assert rows(plant, "SELECT state, processor FROM alerts WHERE alert_id = 'temp-1:temperature:5'") == [
        ("cleared", "processor")]
    assert rows(plant, "SELECT count(*), count(DISTINCT seq) FROM readings") == [(11, 11)]
    assert plant.component("other").report()["redelivered"] == 2


def test_an_alert_stored_but_never_published_is_published_by_the_next_owner(sensor_plant, send, rows):
    plant = sensor_plant(extra=TWO)
    send(plant, "temp-1", "temperature", [70, 71, 85])
    with plant.runtime.storage().begin() as conn:  # as if the old owner died between its commit and publish
        conn.execute(sa.text("UPDATE alerts SET published = NULL"))
    plant.clear()
    send(plant, "temp-1", "temperature", [86], first_seq=4, topic="sensor-data-b")
    assert sorted(alerts_sent(plant)) == [("temp-1:temperature:3", "raised"), ("temp-1:temperature_rate:3", "raised")]
    assert rows(plant, "SELECT DISTINCT published FROM alerts") == [("raised",)]
    assert plant.component("other").report()["alerts_republished"] == 2


def test_partition_changes_are_recorded_and_sensors_warm_again(sensor_plant, send, rows):
    plant = sensor_plant()
    send(plant, "temp-1", "temperature", [70, 71, 85])
    processor = plant.component("processor")

    async def rebalance():  # as the Kafka transport calls the listener: on the loop
        processor._partitions_changed(PartitionChange("revoked", "sensor-processors", (("sensor-data", 1),)))
        processor._partitions_changed(PartitionChange("assigned", "sensor-processors", (("sensor-data", 0),)))

    plant.clock.run(rebalance())
    assert processor.states == {}
    send(plant, "temp-1", "temperature", [86, 70, 70, 70], first_seq=4)
    events = rows(plant, "SELECT kind, source, detail FROM system_events WHERE kind LIKE 'partitions%' ORDER BY id")
    assert [(k, s) for k, s, _d in events] == [("partitions_revoked", "processor"), ("partitions_assigned", "processor")]
    assert '"partitions": [["sensor-data", 0]]' in events[1][2]
    sent = alerts_sent(plant)
    assert sent.count(("temp-1:temperature:3", "raised")) == 1 and ("temp-1:temperature:3", "cleared") in sent
    report = processor.report()
    assert report["rebalances"] == 2 and report["warmed"] == 2 and report["partitions"] == []


def consumer_status(plant, rows):
    return [(at, source, json.loads(detail)) for at, source, detail in
            rows(plant, "SELECT at, source, detail FROM system_events WHERE kind = 'consumer_status' ORDER BY id")]


def test_consumer_status_rows_carry_lag_held_batch_time_and_readings(sensor_plant, send, rows):
    plant = sensor_plant({"status_every": 2.0})
    processor = plant.component("processor")
    lag = {("sensor-data", 0): 7, ("sensor-data", 2): 0}  # as the Kafka transport measures it
    processor.sub.lag = lambda: lag
    processor.sub.assignment = lambda: tuple(lag)
    t0 = plant.clock.time()
    send(plant, "temp-1", "temperature", [70, 71, 72, 73])  # 4 s: rows at 2 s and 4 s
    status = consumer_status(plant, rows)
    assert [(at - t0, source) for at, source, _d in status] == [(2.0, "processor"), (4.0, "processor")]
    detail = status[-1][2]
    assert detail["group"] == "sensor-processors"
    assert detail["lag"] == {"sensor-data:0": 7, "sensor-data:2": 0}
    assert detail["held"] == [["sensor-data", 0], ["sensor-data", 2]]
    assert detail["batch_ms"]["max"] >= detail["batch_ms"]["p50"] >= 0
    assert sum(d["readings"] for _at, _s, d in status) in (3, 4)  # the 4th reading may land after the 4 s row
    plant.advance(2.0)  # an idle interval still reports the lag, with no batch time
    idle = consumer_status(plant, rows)[-1][2]
    assert idle["batch_ms"] is None and idle["readings"] == 0 and idle["lag"]["sensor-data:0"] == 7
    assert processor.report()["status_rows"] == len(consumer_status(plant, rows))


def test_without_a_lag_figure_an_idle_processor_writes_no_status_and_null_turns_it_off(sensor_plant, send, rows):
    plant = sensor_plant({"status_every": 1.0})
    send(plant, "temp-1", "temperature", [70, 71])  # the memory bus has no lag figure: lag null, batches timed
    written = consumer_status(plant, rows)
    assert written and all(d["lag"] is None and d["held"] == [] for _at, _s, d in written)
    plant.advance(5.0)  # idle, no lag figure: nothing to tell
    assert len(consumer_status(plant, rows)) == len(written)
    off = sensor_plant({"status_every": None})
    send(off, "temp-1", "temperature", [70, 71, 72])
    assert consumer_status(off, rows) == [] and off.component("processor").report()["status_rows"] == 0


def test_a_status_row_that_cannot_be_written_is_counted_not_raised(sensor_plant, send, rows):
    plant = sensor_plant({"status_every": 1.0})
    processor = plant.component("processor")

    def fails(*args):
        raise sa.exc.OperationalError("INSERT INTO system_events", {}, ConnectionRefusedError("database down"))

    processor.store.record_event = fails
    send(plant, "temp-1", "temperature", [70, 71, 72])
    report = processor.report()
    assert report["events_unrecorded"] >= 2 and report["status_rows"] == 0 and report["stored"] == 3
    assert consumer_status(plant, rows) == []


def test_a_database_outage_loses_nothing(sensor_plant, send, rows):
    plant = sensor_plant()
    send(plant, "temp-1", "temperature", [70, 71])
    processor = plant.component("processor")
    working = processor.store._engine

    def down():
        raise sa.exc.OperationalError("INSERT INTO readings", {}, ConnectionRefusedError("database down"))

    processor.store._engine = down
    send(plant, "temp-1", "temperature", [85, 90, 105, 104, 99, 97], first_seq=3)  # 6 s of outage
    assert rows(plant, "SELECT count(*) FROM readings") == [(2,)] and alerts_sent(plant) == []
    processor.store._engine = working
    plant.advance(10)
    assert rows(plant, "SELECT seq FROM readings ORDER BY seq") == [(s,) for s in range(1, 9)]
    assert plant.dead_letters == []
    sent = alerts_sent(plant)
    assert ("temp-1:temperature:3", "raised") in sent and ("temp-1:temperature:5", "raised") in sent
    assert len(sent) == len(set(sent)), "nothing published twice"
    assert processor.report()["db_retries"] > 0


def test_past_the_retry_deadline_the_batch_goes_back_to_the_transport(sensor_plant, send, rows):
    plant = sensor_plant({"db_retry_deadline": 2.0})
    send(plant, "temp-1", "temperature", [70, 71, 85])
    processor = plant.component("processor")
    batch = plant.sent(type="mms.sensor_reading")
    working = processor.store._engine

    def down():
        raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("database down"))

    processor.store._engine = down
    processor.states.clear()  # a warm-up is needed: it fails too
    with pytest.raises(Redeliver, match="3 readings not stored, the database failed"):
        plant.clock.run(processor.on_readings(batch))
    assert processor.states == {}, "nothing judged in the failed batch is remembered"
    processor.store._engine = working
    plant.clock.run(processor.on_readings(batch))  # the transport's redelivery
    assert rows(plant, "SELECT count(*) FROM readings") == [(3,)] and processor.report()["batches_redelivered"] == 1


def _metric_points(reader):
    points = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert point.attributes["component"] == "processor"
                    key = (metric.name, *sorted((k, v) for k, v in point.attributes.items() if k != "component"))
                    points[key] = point
    return points


def _metered(sensor_plant, params):
    from types import SimpleNamespace

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from forge_mms.anomaly.metrics import ProcessorMetrics, meter_of

    reader = InMemoryMetricReader()
    tactics = SimpleNamespace(services=SimpleNamespace(telemetry=SimpleNamespace(
        meter_provider=MeterProvider(metric_readers=[reader]))))
    assert meter_of(SimpleNamespace(services=SimpleNamespace(telemetry=None))) is None, "telemetry off: no meter"
    plant = sensor_plant(params)
    plant.component("processor").metrics = ProcessorMetrics(meter_of(tactics), "processor")
    return plant, reader


def test_metrics_count_readings_alerts_and_time_every_batch(sensor_plant, send, payload):
    plant, reader = _metered(sensor_plant, {"status_every": 10.0})
    processor = plant.component("processor")
    send(plant, "temp-1", "temperature", [70, 71, 85, 70, 70, 70])  # six batches of one reading, 6 s
    plant.publish("sensor-data", "mms.sensor_reading", {**payload("temp-1", "temperature", 7, 1.0), "unit": "F"})
    points = {k: getattr(p, "value", None) for k, p in _metric_points(reader).items()}
    assert points[("forge.mms.readings", ("outcome", "stored"))] == 6
    assert points[("forge.mms.readings", ("outcome", "malformed"))] == 1
    assert points[("forge.mms.alerts", ("rule", "temperature"), ("severity", "warning"), ("state", "raised"))] == 1
    assert points[("forge.mms.alerts", ("rule", "temperature"), ("severity", "warning"), ("state", "cleared"))] == 1
    assert ("forge.mms.batch.duration",) not in points, "kept locally until the status interval"
    plant.advance(4.0)  # the status interval (10 s) hands the durations over
    duration = _metric_points(reader)[("forge.mms.batch.duration",)]
    assert duration.count == 7 == processor.report()["batches"], "every batch, under the virtual clock too"
    assert duration.sum == pytest.approx(processor.metrics.duration.total) and duration.sum > 0
    assert sum(duration.bucket_counts) == 7 and duration.max >= duration.min >= 0
    send(plant, "temp-1", "temperature", [70, 70], first_seq=8)  # two more, handed over at stop
    plant.stop()
    assert _metric_points(reader)[("forge.mms.batch.duration",)].count == 9 == processor.report()["batches"]


def test_without_status_rows_the_batch_durations_still_reach_the_histogram(sensor_plant, send):
    from forge_mms.components.sensor_processor import METRICS_EVERY

    plant, reader = _metered(sensor_plant, {"status_every": None})
    send(plant, "temp-1", "temperature", [70, 71])
    plant.advance(METRICS_EVERY)
    assert _metric_points(reader)[("forge.mms.batch.duration",)].count == 2


def test_alerts_that_could_not_be_published_are_published_when_the_batch_comes_again(sensor_plant, send, rows):
    from forge_core import TransportError

    plant = sensor_plant()
    send(plant, "temp-1", "temperature", [70, 71])
    processor = plant.component("processor")
    publish = processor.ctx.publish

    async def broken(*args, **kwargs):
        raise TransportError("broker unreachable")

    processor.ctx.publish = broken
    send(plant, "temp-1", "temperature", [85], first_seq=3)  # stored; publishing fails; handed back 4 times
    processor.ctx.publish = publish
    assert rows(plant, "SELECT count(*) FROM readings") == [(3,)] and alerts_sent(plant) == []
    assert rows(plant, "SELECT alert_id, published FROM alerts ORDER BY alert_id") == [
        ("temp-1:temperature:3", None), ("temp-1:temperature_rate:3", None)]
    assert processor.states == {}, "forgotten: the next reading warms the sensor and publishes what it owes"
    send(plant, "temp-1", "temperature", [86], first_seq=4)
    assert sorted(alerts_sent(plant)) == [("temp-1:temperature:3", "raised"), ("temp-1:temperature_rate:3", "raised")]
    assert rows(plant, "SELECT DISTINCT published FROM alerts") == [("raised",)]


def test_under_virtual_time_readings_share_a_transaction_that_a_kill_or_any_reader_commits(sensor_plant, send,
                                                                                           rows):
    """Grouped commits keep what a commit per batch keeps: a reader through the engine sees every handled
    reading, and a kill (no stop()) leaves every handled reading in the database. A connection the engine
    does not know sees only what is committed."""
    import contextlib
    import sqlite3

    plant = sensor_plant()
    path = plant.runtime.storage().url.database

    def outside() -> int:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return conn.execute("SELECT count(*) FROM readings").fetchone()[0]

    send(plant, "temp-1", "temperature", [70, 71, 72])
    group = plant.component("processor").store.commits
    assert outside() == 0 and group.units == 3, "one open transaction"
    plant.kill("processor")
    assert outside() == 3, "a kill lost readings the processor had handled"
    plant.revive("processor")
    send(plant, "temp-1", "temperature", [73, 74], first_seq=4)
    group = plant.component("processor").store.commits
    assert outside() == 3 and group.units == 2
    assert rows(plant, "SELECT count(*) FROM readings") == [(5,)], "any checkout of the engine commits first"
    assert outside() == 5 and group.pending == []
    send(plant, "temp-1", "temperature", [75], first_seq=6)
    plant.stop()
    assert outside() == 6, "stop commits the open group"


def test_one_reading_a_transaction_under_virtual_time_when_asked(sensor_plant, send):
    import contextlib
    import sqlite3

    plant = sensor_plant({"virtual_commit_readings": 1})
    path = plant.runtime.storage().url.database
    send(plant, "temp-1", "temperature", [70, 71])
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 2


def test_two_processors_in_one_process_take_turns_with_their_open_transactions(sensor_plant, send, rows):
    """SQLite lets one transaction write at a time: a group beginning on the engine commits another's open
    one first, so neither waits for a commit that cannot come (no 'database is locked', no retry)."""
    plant = sensor_plant(extra=TWO)
    for seq in range(1, 4):
        send(plant, "temp-1", "temperature", [70], first_seq=seq)
        send(plant, "temp-2", "temperature", [70], first_seq=seq, topic="sensor-data-b")
    assert rows(plant, "SELECT count(*) FROM readings") == [(6,)]
    assert [plant.component(n).report()["db_retries"] for n in ("processor", "other")] == [0, 0]
