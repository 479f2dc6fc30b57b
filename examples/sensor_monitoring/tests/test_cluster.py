"""Smoke tests of the ``cluster`` and ``cluster_secure`` profiles on real servers: one Apache Kafka broker
(replication 1 instead of the profiles' 3: the three-broker runs are the drills'), PostgreSQL and Mosquitto;
``forge run --profile ...`` starts a process per instance (3 sensors, 1 MQTT-only sensors, the bridge,
3 processors).

The sensors sample SAMPLE readings each and go quiet; the test stops the plant (SIGINT) once PostgreSQL
holds that many per sensor: stored == produced exactly, per sensor and seq; every Kafka record of sensor-data
is keyed by its sensor id (the MQTT sensors' through the bridge's key_from_level). With
``cluster_secure`` each process kind logs in as its own SCRAM principal (sensor_monitoring.security), and a
principal is refused what its ACLs do not allow.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sensor_monitoring.security import client_environment, grant_plant, passwords
from sensor_monitoring.testing import PLANT

pytest.importorskip("forge_mms.components.sensor_processor")
pytest.importorskip("forge_kafka")
from forge_mqtt.testing import MosquittoServer

from forge_core.testing import watched_popen

SAMPLE = 20     # seconds (readings) each sensor samples (the MQTT ones after their start_after)
SENSORS = 12    # 3 instances x 3 kinds, and the 3 MQTT-only ones
WAIT = 300      # seconds to wait until every reading is stored (8 processes start on a loaded 2-core box)


def cluster_copy(tmp: Path, profile: str) -> Path:
    """plant.yaml with one broker's replication and the sensors quiet after SAMPLE s."""
    doc = yaml.safe_load((PLANT / "plant.yaml").read_text())
    chosen = doc["profiles"][profile]
    for transport in chosen["transports"].values():
        settings = transport.get("settings") or {}
        if transport["type"] == "kafka":
            settings["default_replication"] = 1
            settings["topics"] = {name: {**spec, "replication": 1, "config": {"min.insync.replicas": "1"}}
                                  for name, spec in settings["topics"].items()}
    doc["components"]["sensors"]["params"]["stop_after"] = SAMPLE
    mqtt = chosen["components"]["mqtt_sensors"]["params"]
    mqtt["stop_after"] = SAMPLE + mqtt["start_after"]
    plant = tmp / "plant"
    plant.mkdir()
    (plant / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    return plant


def kafka_records(config: dict[str, Any], topic: str) -> list[tuple[int, str | None, dict[str, Any]]]:
    """(partition, key, reading) of every record of ``topic`` (a consumer of its own, from the start)."""
    from confluent_kafka import Consumer

    consumer = Consumer({**config, "group.id": f"smoke-scan-{os.getpid()}-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: list[tuple[int, str | None, dict[str, Any]]] = []
    idle = time.monotonic()
    try:
        while time.monotonic() - idle < 10:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            idle = time.monotonic()
            body = json.loads(message.value())
            reading = body.get("data", body)  # structured CloudEvent, or plain JSON
            key = message.key().decode() if message.key() is not None else None
            found.append((message.partition(), key, reading))
    finally:
        consumer.close()
    return found


def wait_until_stored(url: str, process: subprocess.Popen[str]) -> dict[str, int] | None:
    """Poll PostgreSQL until SENSORS sensors have SAMPLE readings stored each (None: WAIT passed, or the plant
    ended); then wait a little, so a reading stored twice or beyond SAMPLE would show too."""
    engine = sa.create_engine(url)
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(2)
            with contextlib.suppress(sa.exc.SQLAlchemyError), engine.connect() as conn:  # tables not there yet
                sql = "SELECT sensor_id, count(*) FROM readings GROUP BY sensor_id"
                counts = dict(conn.execute(sa.text(sql)).all())
                if len(counts) >= SENSORS and min(counts.values()) >= SAMPLE:
                    time.sleep(3)
                    return counts
        return None
    finally:
        engine.dispose()


def run_and_check(tmp_path: Path, profile: str, kafka_env: dict[str, str], kafka_client: dict[str, Any],
                  postgres_server: Any) -> None:
    """forge run PROFILE until every reading is stored, then: every check passed, stored == produced, records
    keyed by sensor."""
    plant = cluster_copy(tmp_path, profile)
    if not postgres_server.running:
        postgres_server.start()
    name = f"sensor_{profile}_{os.getpid()}"
    url = postgres_server.create_database(name)
    broker = MosquittoServer(base_dir=tmp_path / "mosquitto").start()
    env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port), "FORGE_DATABASE_URL": url,
           **kafka_env}
    env.pop("FORGE_DISABLE_PLUGINS", None)
    try:
        process = watched_popen([sys.executable, "-m", "forge_core.cli", "run", str(plant), "--profile", profile,
                                 "--seed", "7", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        counts = wait_until_stored(url, process)
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        logs = plant / ".forge" / "processes"
        if os.environ.get("SENSOR_SMOKE_KEEP"):  # keep the logs and the summary for a look after a failure
            keep = Path(os.environ["SENSOR_SMOKE_KEEP"]) / profile
            shutil.copytree(plant / ".forge", keep, dirs_exist_ok=True)
            (keep / "summary.json").write_text(result.stdout)
        assert counts is not None, f"not every reading stored within {WAIT}s; stderr:\n{stderr[-3000:]}; logs {logs}"
        assert result.stdout.strip(), f"no summary; stderr:\n{result.stderr[-4000:]}\nlogs in {logs}"
        summary = json.loads(result.stdout)
        failed = [c for c in summary["checks"] if not c["passed"]]
        assert result.returncode == 0 and not failed, (failed, summary["components"], result.stderr[-3000:])

        produced: dict[str, int] = {}
        for instance, report in summary["reports"].items():
            sensors = report.get("sensors")
            for sensor_id, view in (sensors.items() if isinstance(sensors, dict) else ()):
                assert [life["epoch"] for life in view["lives"]] == [0], f"{instance}: one life, epoch 0"
                produced[sensor_id] = sum(life["produced"] for life in view["lives"])
        assert produced == dict.fromkeys(produced, SAMPLE) and len(produced) == SENSORS, produced
        assert any(s.startswith("mqtt-") for s in produced)

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                stored = {sid: (n, lo, hi) for sid, n, lo, hi in conn.execute(sa.text(
                    "SELECT sensor_id, count(*), min(seq), max(seq) FROM readings GROUP BY sensor_id"))}
                processors = {p for (p,) in conn.execute(sa.text("SELECT DISTINCT processor FROM readings"))}
        finally:
            engine.dispose()
        assert stored == {sid: (n, 1, n) for sid, n in produced.items()}, "stored == produced, seqs 1..n"
        assert len(processors) >= 2, f"the group shared the partitions: {processors}"
        assert "every produced reading stored exactly once" in {c["name"] for c in summary["checks"]}

        # the live view (in the parent process): stored and partition assignments from PostgreSQL
        view = summary["reports"]["monitor"]
        assert view["stored"] == sum(n for n, _, _ in stored.values()) and view["db_error"] is None, view
        held = [tuple(tp) for tps in view["assignments"].values() for tp in tps]
        assert sorted(held) == [("sensor-data", p) for p in range(3)], view["assignments"]
        assert view["rebalances"] >= len(view["assignments"]) >= 2
        if profile == "cluster":  # cluster_secure: count_produced false
            assert view["produced"] > 0 and sorted(view["monitor_partitions"]) == [
                ["sensor-data", p] for p in range(3)], view  # its own consumer (group monitor) holds all three

        records = kafka_records(kafka_client, "sensor-data")
        mine = [(p, k, r) for p, k, r in records if r.get("sensor_id") in produced]
        assert all(k == r["sensor_id"] for _, k, r in mine), "every record keyed by its sensor id"
        assert {r["sensor_id"] for _, _, r in mine} == set(produced)
        partitions: dict[str, set[int]] = {}
        for p, _, r in mine:
            partitions.setdefault(r["sensor_id"], set()).add(p)
        assert all(len(ps) == 1 for ps in partitions.values()), "one sensor, one partition (its order)"
        assert len({p for ps in partitions.values() for p in ps}) == 3, "the 12 sensors use all 3 partitions"
    finally:
        broker.close()
        with contextlib.suppress(Exception):
            postgres_server.drop_database(name)


@pytest.mark.slow
@pytest.mark.servers
def test_the_cluster_profile_stores_every_reading_once(tmp_path, apache_kafka, postgres_server):
    run_and_check(tmp_path, "cluster", {"KAFKA_BOOTSTRAP": apache_kafka.bootstrap},
                  {"bootstrap.servers": apache_kafka.bootstrap}, postgres_server)


def _refused(config: dict[str, Any], *, produce_to: str | None = None, consume: str | None = None,
             group: str = "sensor-processors") -> str:
    """The error Kafka answers ``config``'s principal (empty: it was allowed)."""
    from confluent_kafka import Consumer, Producer

    if produce_to is not None:
        errors: list[Any] = []
        producer = Producer({**config, "message.timeout.ms": 10000})
        producer.produce(produce_to, b"{}", on_delivery=lambda error, _m: errors.append(error))
        producer.flush(20)
        del producer
        gc.collect()  # no client left polling the cluster after it closes
        if not errors:
            return "no delivery report"
        return "" if errors[0] is None else f"{errors[0].name()}: {errors[0].str()}"
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([str(consume)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None:
                error = message.error()
                return "" if error is None else f"{error.name()}: {error.str()}"
        return "nothing answered"
    finally:
        consumer.close()


@pytest.mark.slow
@pytest.mark.servers
@pytest.mark.timeout(600)
def test_the_cluster_secure_profile_runs_each_process_kind_as_its_own_principal(tmp_path, postgres_server):
    from forge_kafka.cluster import KafkaCluster

    from forge_core.testing import ServerUnavailable

    users = passwords()
    try:
        cluster = KafkaCluster(1, security="scram", users=users)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with cluster:
        grant_plant(cluster.grant)
        run_and_check(tmp_path, "cluster_secure",
                      {"KAFKA_BOOTSTRAP": cluster.bootstrap, **client_environment(users)},
                      cluster.client_config(), postgres_server)
        # what the policy forbids is refused: a sensor cannot read the readings nor join the processors' group,
        # the bridge cannot raise alerts, a processor cannot forge readings
        assert "AUTHORIZATION" in _refused(cluster.client_config("sensors"), consume="sensor-data").upper()
        assert "AUTHORIZATION" in _refused(cluster.client_config("bridge"), produce_to="alerts").upper()
        assert "AUTHORIZATION" in _refused(cluster.client_config("processors"), produce_to="sensor-data").upper()
        assert _refused(cluster.client_config("processors"), produce_to="alerts") == "", "and allowed what it needs"
