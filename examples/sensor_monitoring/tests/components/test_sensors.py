"""The simulated sensors on their own, under virtual time (no processors): readings, seqs, anomalies,
commands, publish failures."""

from __future__ import annotations

import itertools
import statistics

import pytest
from sensor_monitoring.lives import SEQ_SPAN

from forge_core import TransportError

READING = "mms.sensor_reading"
COMMAND = "sensor_monitoring.sensor_command"
QUIET = {"anomalies": {"rate": 0.0, "schedule": []}}
IDS = [f"{p}-{n}" for p in ("temp", "vib", "energy") for n in (1, 2, 3)]


def readings(plant, sensor_id: str | None = None) -> list[dict]:
    return [e.payload for e in plant.sent(type=READING) if sensor_id is None or e.payload["sensor_id"] == sensor_id]


def quiet(plant_factory, **params):
    return plant_factory(keep=("sensors",), params={"sensors": {**QUIET, **params}})


def test_nine_sensors_read_every_second_on_sensor_data_keyed_by_id(sensor_plant):
    plant = quiet(sensor_plant)
    plant.advance(10.0)
    envelopes = plant.sent("sensor-data", type=READING)
    assert {e.payload["sensor_id"] for e in envelopes} == set(IDS)
    assert all(e.key == e.payload["sensor_id"] for e in envelopes)
    for sensor_id in IDS:
        got = readings(plant, sensor_id)
        assert len(got) == 10, sensor_id
        assert [r["seq"] for r in got] == list(range(1, 11)), "seq from 1, no gap"
        stamps = [r["timestamp"] for r in got]
        assert stamps == sorted(stamps)
        assert all(r["anomaly"] is None for r in got)
    first = readings(plant, "vib-2")[0]
    assert (first["kind"], first["unit"], first["location"]) == ("vibration", "mm/s", "line-2")
    assert readings(plant, "energy-3")[0]["unit"] == "kW" and readings(plant, "temp-1")[0]["unit"] == "C"
    report = plant.component("sensors-0").report()
    assert report["produced"] == 30 and report["publish_errors"] == 0
    assert report["sensors"]["temp-1"]["lives"][0] == {
        "epoch": 0, "first_seq": 1, "last_seq": 10, "produced": 10, "skipped": 0, "publish_errors": 0,
        "recent_from": 6}, "published in the last 5 s (checks.in_flight): 6..10"


def test_an_hour_of_normal_readings_stays_in_range_and_changes_smoothly(sensor_plant):
    plant = quiet(sensor_plant)
    plant.advance(3600)
    bounds = {"temp": (50.0, 75.0), "vib": (0.0, 4.5), "energy": (33.0, 58.0)}
    for sensor_id in IDS:
        values = [r["value"] for r in readings(plant, sensor_id)]
        low, high = bounds[sensor_id.split("-")[0]]
        assert len(values) == 3600 and low < min(values) and max(values) < high, (sensor_id, min(values), max(values))
        assert statistics.pstdev(values) > 0.1, "the signal is not flat"
        runs = max(len(list(g)) for _, g in itertools.groupby(values))
        assert runs < 5, f"{sensor_id}: {runs} identical readings in a row without a stuck anomaly"
    temps = [r["value"] for r in readings(plant, "temp-1")]
    assert max(abs(b - a) for a, b in itertools.pairwise(temps)) < 5.0, "no jump without an anomaly"


def test_the_same_seed_gives_the_same_readings_and_another_seed_others(sensor_plant):
    runs = [sensor_plant(keep=("sensors",), seed=seed) for seed in (7, 7, 8)]
    for plant in runs:
        plant.advance(600)
    values = [[(r["sensor_id"], r["seq"], r["value"], r["anomaly"]) for r in readings(p)] for p in runs]
    assert values[0] == values[1] and values[0] != values[2]


@pytest.mark.parametrize("anomaly", ["spike", "drift", "stuck", "burst"])
def test_a_scheduled_anomaly_shapes_the_readings_and_labels_them(sensor_plant, anomaly):
    sensor_id = "temp-2"
    plant = sensor_plant(keep=("sensors",), params={"sensors": {"anomalies": {
        "rate": 0.0, "schedule": [{"at": 30, "sensor": sensor_id, "anomaly": anomaly}]}}})
    plant.advance(200)
    got = readings(plant, sensor_id)
    marked = [r for r in got if r["anomaly"] == anomaly]
    assert {r["anomaly"] for r in got} == {None, anomaly}
    seqs = [r["seq"] for r in marked]
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "one episode, consecutive readings"
    before = [r["value"] for r in got if r["seq"] < seqs[0]]
    values = [r["value"] for r in marked]
    duration = {"spike": 5, "drift": 60, "stuck": 30, "burst": 10}[anomaly]
    if anomaly == "spike":
        assert len(marked) == duration and min(values) > 100.0
    elif anomaly == "drift":
        assert len(marked) == duration and values[0] < 75.0 and max(values[-5:]) > 110.0
        assert statistics.correlation(range(len(values)), values) > 0.95
    elif anomaly == "stuck":
        assert len(marked) == duration and len(set(values)) == 1 and values[0] == before[-1]
    else:
        assert len(marked) == pytest.approx(duration * 10, abs=2), "ten times as often"
        assert statistics.pstdev(values) > 5.0
    after = [r["value"] for r in got if r["seq"] > seqs[-1]]
    assert after and max(after) < 75.0, "back to normal when it ends"
    assert plant.component("sensors-1").report()["sensors"][sensor_id]["anomalies"] == {anomaly: 1}


def test_random_anomalies_come_at_the_configured_rate_on_quiet_sensors(sensor_plant):
    plant = sensor_plant(keep=("sensors",), params={"sensors": {"anomalies": {"rate": 6.0, "schedule": []}}})
    plant.advance(3600)
    injected = sum(plant.component(f"sensors-{i}").report()["anomalies"] for i in range(3))
    assert 20 <= injected <= 60, "about 6 per sensor-hour less the quiet periods (9 sensors)"
    for sensor_id in IDS:
        got = readings(plant, sensor_id)
        first = next((r for r in got if r["anomaly"]), None)
        assert first is None or first["seq"] > 60, "none in the first minute (rule warm-up)"


def test_commands_inject_scale_and_clear_at_run_time(sensor_plant):
    plant = quiet(sensor_plant)
    plant.advance(10)
    plant.publish("sensors/control", COMMAND, {"command": "inject", "sensor_id": "vib-3", "anomaly": "spike",
                                                 "duration": 20.0, "reason": "test"})
    plant.advance(5)
    recent = readings(plant, "vib-3")[-4:]
    assert all(r["anomaly"] == "spike" and r["value"] > 8.0 for r in recent)
    plant.publish("sensors/control", COMMAND, {"command": "clear"})
    plant.advance(3)
    assert readings(plant, "vib-3")[-1]["anomaly"] is None
    before = len(readings(plant, "temp-1"))
    plant.publish("sensors/control", COMMAND, {"command": "scale", "scale": 10.0, "instance": "sensors-0"})
    plant.advance(10)
    assert len(readings(plant, "temp-1")) - before == pytest.approx(100, abs=2), "ten readings a second"
    assert len(readings(plant, "temp-2")) == before + 10, "another instance is not scaled"
    report = plant.component("sensors-2").report()
    assert report["commands"] == {"applied": 2, "stale": 0, "foreign": 1}


def test_a_command_stamped_before_the_life_started_is_ignored(sensor_plant):
    plant = quiet(sensor_plant)
    plant.advance(5)
    plant.publish("sensors/control", COMMAND, {"command": "inject", "sensor_id": "temp-1", "anomaly": "burst",
                                                 "timestamp": "2020-01-01T00:00:00Z"})
    plant.advance(5)
    assert all(r["anomaly"] is None for r in readings(plant, "temp-1"))
    assert plant.component("sensors-0").report()["commands"]["stale"] == 1


def test_a_restarted_instance_numbers_its_readings_in_a_new_epoch(sensor_plant):
    plant = quiet(sensor_plant)
    plant.advance(10)
    plant.kill("sensors-0")
    plant.advance(3)
    plant.revive("sensors-0")
    plant.advance(10)
    seqs = [r["seq"] for r in readings(plant, "temp-1")]
    assert seqs[:10] == list(range(1, 11)) and seqs[10:] == list(range(SEQ_SPAN + 1, SEQ_SPAN + 11))
    lives = plant.component("sensors-0").report()["sensors"]["temp-1"]["lives"]
    assert [(life["epoch"], life["produced"]) for life in lives] == [(0, 10), (1, 10)]


def test_the_next_run_on_the_same_data_dir_continues_in_a_new_epoch(sensor_plant, tmp_path):
    first = quiet(sensor_plant)
    first.advance(5)
    first.stop()
    second = sensor_plant(directory=first.manifest.plant_dir)
    second.advance(5)
    assert readings(second, "energy-2")[0]["seq"] == SEQ_SPAN + 1
    assert (first.manifest.plant_dir / ".forge" / "sensor_monitoring" / "epochs.json").exists()


def test_publish_failures_are_counted_and_the_readings_sent_again_in_order(sensor_plant):
    plant = quiet(sensor_plant)
    sensors = plant.component("sensors-0")
    publish, failures = sensors.ctx.publish, {"left": 12}

    async def flaky(topic, type_, payload, **kw):
        if payload["sensor_id"] == "temp-1" and failures["left"] > 0:
            failures["left"] -= 1
            raise TransportError("broker unreachable (test)")
        return await publish(topic, type_, payload, **kw)

    sensors.ctx.publish = flaky
    plant.advance(30)
    seqs = [r["seq"] for r in readings(plant, "temp-1")]
    assert seqs == list(range(1, len(seqs) + 1)), "sent again in order, same seq, no gap"
    life = sensors.report()["sensors"]["temp-1"]["lives"][0]
    assert life["publish_errors"] == 12 and life["produced"] == len(seqs) and life["skipped"] == 0
    assert len(seqs) == 30, "the backlog went out once the transport answered"


def test_a_full_backlog_skips_samples_and_leaves_no_gap(sensor_plant):
    plant = quiet(sensor_plant, backlog=3)
    sensors = plant.component("sensors-0")
    publish, broken = sensors.ctx.publish, {"on": True}

    async def down(topic, type_, payload, **kw):
        if broken["on"]:
            raise TransportError("down (test)")
        return await publish(topic, type_, payload, **kw)

    sensors.ctx.publish = down
    plant.advance(10)
    broken["on"] = False
    plant.advance(5)
    seqs = [r["seq"] for r in readings(plant, "vib-1")]
    assert seqs == list(range(1, len(seqs) + 1))
    life = sensors.report()["sensors"]["vib-1"]["lives"][0]
    assert life["skipped"] >= 6 and life["produced"] == len(seqs)


def test_stop_after_ends_sampling(sensor_plant):
    plant = quiet(sensor_plant, stop_after=5.0)
    plant.advance(20)
    assert len(readings(plant, "temp-3")) == 5


def test_start_after_delays_the_first_reading(sensor_plant):
    plant = quiet(sensor_plant, start_after=10.0)
    plant.advance(9.9)
    assert readings(plant) == []
    plant.advance(1.1)
    assert sorted(r["seq"] for r in readings(plant)) == [1] * 9, "each sensor's first within one interval after"


def test_metrics_count_produced_failed_and_injected(sensor_plant):
    from types import SimpleNamespace

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from sensor_monitoring.metrics import SensorMetrics, meter_of

    reader = InMemoryMetricReader()
    tactics = SimpleNamespace(services=SimpleNamespace(telemetry=SimpleNamespace(
        meter_provider=MeterProvider(metric_readers=[reader]))))
    assert meter_of(SimpleNamespace(services=SimpleNamespace(telemetry=None))) is None, "telemetry off: no meter"
    plant = quiet(sensor_plant)
    sensors = plant.component("sensors-0")
    sensors.metrics = SensorMetrics(meter_of(tactics), "sensors-0")
    publish, failures = sensors.ctx.publish, {"left": 2}

    async def flaky(topic, type_, payload, **kw):
        if payload["sensor_id"] == "vib-1" and failures["left"] > 0:
            failures["left"] -= 1
            raise TransportError("down (test)")
        return await publish(topic, type_, payload, **kw)

    sensors.ctx.publish = flaky
    plant.publish("sensors/control", COMMAND, {"command": "inject", "sensor_id": "temp-1", "anomaly": "stuck"})
    plant.advance(10)
    points = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    assert point.attributes["component"] == "sensors-0"
                    key = (metric.name, *sorted((k, v) for k, v in point.attributes.items() if k != "component"))
                    points[key] = point.value
    assert points[("forge.sensors.readings", ("kind", "temperature"), ("outcome", "produced"))] == 10
    assert points[("forge.sensors.readings", ("kind", "vibration"), ("outcome", "produced"))] == 10
    assert points[("forge.sensors.readings", ("kind", "vibration"), ("outcome", "publish_error"))] == 2
    assert points[("forge.sensors.anomalies", ("anomaly", "stuck"), ("kind", "temperature"),
                   ("source", "command"))] == 1


def test_a_publish_that_waits_is_finished_in_a_task_and_the_next_sample_follows_it(sensor_plant):
    """Samples run in timer callbacks; a publish that suspends (a broker's flow control) is finished in a task,
    its failure counted and its reading kept, and the sensor samples on after it."""
    import asyncio

    plant = quiet(sensor_plant)
    sensors = plant.component("sensors-0")
    publish, waits = sensors.ctx.publish, {"left": 6, "fail": 2}

    async def slow(topic, type_, payload, **kw):
        if payload["sensor_id"] == "vib-1" and waits["left"] > 0:
            waits["left"] -= 1
            await asyncio.sleep(0.2)
            if waits["fail"] > 0:
                waits["fail"] -= 1
                raise TransportError("timed out (test)")
        return await publish(topic, type_, payload, **kw)

    sensors.ctx.publish = slow
    plant.advance(20)
    seqs = [r["seq"] for r in readings(plant, "vib-1")]
    assert seqs == list(range(1, len(seqs) + 1)), "in order, no gap"
    life = sensors.report()["sensors"]["vib-1"]["lives"][0]
    assert life["publish_errors"] == 2 and life["produced"] == len(seqs) >= 17
    assert len(readings(plant, "temp-1")) == 20, "the other sensors sampled on meanwhile"


def test_a_sample_that_raises_crashes_the_instance_which_restarts_in_a_new_epoch(sensor_plant):
    plant = quiet(sensor_plant)
    sensors = plant.component("sensors-0")
    publish, broken = sensors.ctx.publish, {"left": 1}

    async def buggy(topic, type_, payload, **kw):
        if payload["sensor_id"] == "energy-1" and broken["left"] > 0:
            broken["left"] -= 1
            raise RuntimeError("a bug (test)")
        return await publish(topic, type_, payload, **kw)

    sensors.ctx.publish = buggy
    plant.advance(30)
    assert plant.component("sensors-0") is not sensors, "crashed and restarted"
    assert sensors.sensors["temp-1"].timer.cancelled(), "the old life's timers are cancelled"
    assert any(r["seq"] > SEQ_SPAN for r in readings(plant, "energy-1")), "the new life numbers in a new epoch"
