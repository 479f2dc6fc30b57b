"""KafkaCluster: Apache Kafka in KRaft mode, 1 or 3 brokers, and the failure drills it exists for.

The three-broker drills (marker ``drills``) run on the session's cluster (fixture ``kafka_cluster``,
healed around each test): the Forge transport publishes with acks=all through a broker crash,
a SIGSTOP and a restart, and a consumer group gets every message.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from forge_core import Envelope, RawMessage
from forge_core.testing import ServerUnavailable

from forge_kafka import KafkaTransport
from forge_kafka.cluster import KafkaCluster
from forge_kafka.jars import JVM_FLAGS, fetch_kafka, java_or_error, kafka_version

from .conftest import payload_of

ck = pytest.importorskip("confluent_kafka")


# -- without a running broker -------------------------------------------------------------------------
def test_a_killed_owner_leaves_no_cluster_dir() -> None:
    """The cluster's own temp dir is the watchdog's to remove when its process dies before close()."""
    try:
        java_or_error()
        fetch_kafka()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    code = ("import sys, time\nfrom forge_kafka.cluster import KafkaCluster\n"
            "print(KafkaCluster().dir, flush=True)\ntime.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        directory = Path(owner.stdout.readline().strip())
        assert directory.is_dir(), directory
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 10
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not directory.exists(), f"{directory} outlived its killed owner"


def test_jars_are_cached_so_a_second_fetch_needs_no_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        first = fetch_kafka()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("PATH", "/nonexistent")  # no mvn: the cache alone must answer
    assert fetch_kafka() == first
    assert (first / f"kafka_2.13-{kafka_version()}.jar").is_file()
    assert (first / ".complete").is_file()


def test_missing_java_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServerUnavailable, match="openjdk-17-jre-headless"):
        java_or_error()


def test_missing_maven_names_the_debian_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORGE_KAFKA_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServerUnavailable, match="apt-get install maven"):
        fetch_kafka("4.0.0")


def test_three_brokers_replicate_three_ways_and_one_broker_once(tmp_path: Path) -> None:
    try:
        three, one = KafkaCluster(3, base_dir=tmp_path / "3"), KafkaCluster(1, base_dir=tmp_path / "1")
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with pytest.raises(ValueError, match="1 or 3"):
        KafkaCluster(2)
    props = three.brokers[1].properties()
    assert props["process.roles"] == "broker,controller" and props["node.id"] == "1"
    assert props["controller.quorum.voters"].count("@127.0.0.1:") == 3
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["offsets.topic.replication.factor"] == "3"
    assert one.brokers[0].properties()["min.insync.replicas"] == "1"
    assert len(three.bootstrap.split(",")) == 3 and not three.cluster_id.startswith("-")
    assert "-Xmx384m" in JVM_FLAGS
    three.close()
    one.close()


# -- one broker of its own ----------------------------------------------------------------------------
@pytest.mark.servers
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_one_broker_keeps_its_records_across_a_crash() -> None:
    try:
        cluster = KafkaCluster(1)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    with cluster:
        producer = Producer({**cluster.client_config(), "acks": "all", "enable.idempotence": True})
        for n in range(50):
            producer.produce("durable", key=b"k", value=str(n).encode())
        assert producer.flush(30) == 0
        cluster.kill(0)  # SIGKILL: no clean shutdown, the log is recovered on start
        cluster.restart(0)
        consumer = ck.Consumer({**cluster.client_config(), "group.id": "g", "auto.offset.reset": "earliest"})
        consumer.subscribe(["durable"])
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < 50 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                got.append(message.value())
        consumer.close()
    assert got == [str(n).encode() for n in range(50)]
    assert not cluster.dir.exists()


# -- drills on the session's three-broker cluster ------------------------------------------------------
async def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _wait_isr(cluster: KafkaCluster, topic: str, partition: int, want: list[int], timeout: float = 60) -> float:
    began = time.monotonic()
    while cluster.isr_of(topic, partition) != want:
        if time.monotonic() - began > timeout:
            raise AssertionError(f"ISR of {topic}[{partition}] is {cluster.isr_of(topic, partition)}, not {want}")
        time.sleep(0.2)
    return time.monotonic() - began


def _drill(cluster: KafkaCluster, fault: str, total: int = 1500) -> dict[str, Any]:
    """Publish ``total`` readings at ~500/s through the transport while ``fault`` hits the leader of
    partition 0; a group consumer must get every one. Returns figures for the assertions."""
    topic = f"drill{uuid.uuid4().hex[:6]}/readings"
    kafka_topic = topic.replace("/", ".")

    async def body() -> dict[str, Any]:
        settings = {"bootstrap": cluster.bootstrap, "topics": {topic: {"partitions": 3, "replication": 3}},
                    "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "metadata_refresh_ms": 1000,
                    "linger_ms": 1, "stall_timeout": 10.0,
                    # a request in flight to a dead or frozen leader is retried elsewhere after this
                    "producer": {"request.timeout.ms": 5000}}
        out, into = KafkaTransport("out", settings, plant="drill"), KafkaTransport("in", settings, plant="drill")
        await out.connect()
        await into.connect()
        got: set[int] = set()

        async def handle(topic_: str, message: Envelope | RawMessage) -> None:
            assert isinstance(message, RawMessage)
            got.add(payload_of(topic_, message)["n"])

        await into.subscribe(topic, handle, group="readers")
        assert cluster.isr_of(kafka_topic, 0) == [0, 1, 2]
        victim = cluster.leader_of(kafka_topic, 0)
        for n in range(total):
            await out.publish(topic, Envelope("drill.reading", {"n": n}, f"s{n % 12}", uuid.uuid4().hex,
                                              time.time(), None, 1, {}))
            if n == total // 3:
                {"kill": cluster.kill, "freeze": cluster.freeze}[fault](victim)
                faulted = time.monotonic()
            if n % 10 == 9:
                await asyncio.sleep(0.02)
        unacked = await out.flush(60)
        new_leader = cluster.leader_of(kafka_topic, 0)  # acks came back: partition 0 has a live leader
        await _wait(lambda: len(got) >= total, 90, f"all {total} readings (have {len(got)})")
        recovered = time.monotonic() - faulted
        stats = out.health().stats
        await into.close()
        await out.close()
        return {"topic": kafka_topic, "victim": victim, "new_leader": new_leader, "unacked": unacked,
                "missing": sorted(set(range(total)) - got)[:10], "seconds": recovered, **stats}

    return asyncio.run(body())


@pytest.mark.drills
@pytest.mark.servers
@pytest.mark.timeout(300)
def test_leader_killed_publishing_goes_on_nothing_lost_and_it_rejoins(kafka_cluster: KafkaCluster) -> None:
    result = _drill(kafka_cluster, "kill")
    print(result)
    assert result["new_leader"] != result["victim"]
    assert result["unacked"] == 0 and result["missing"] == []
    assert result.get("publish_failed", 0) == 0
    kafka_cluster.restart(result["victim"])
    rejoin = _wait_isr(kafka_cluster, result["topic"], 0, [0, 1, 2])
    print(f"ISR back to 3 {rejoin:.1f}s after the restart")


@pytest.mark.drills
@pytest.mark.servers
@pytest.mark.timeout(300)
def test_frozen_leader_is_fenced_and_rejoins_when_thawed(kafka_cluster: KafkaCluster) -> None:
    result = _drill(kafka_cluster, "freeze")
    print(result)
    assert result["new_leader"] != result["victim"]  # fenced after broker.session.timeout.ms
    assert result["unacked"] == 0 and result["missing"] == []
    kafka_cluster.thaw(result["victim"])
    _wait_isr(kafka_cluster, result["topic"], 0, [0, 1, 2])
