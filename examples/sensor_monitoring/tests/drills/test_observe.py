"""The drills' end: lag 0 is not enough, the topic must be quiet (QuietGate), and every sensors instance
must have applied the ``scale`` command (its command group committed past it: ``LagSampler.committed_by``,
against a real broker)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from sensor_monitoring.drills.base import PlantSettings
from sensor_monitoring.drills.harness import effective_profile, kafka_settings
from sensor_monitoring.drills.measure import lost_note
from sensor_monitoring.drills.observe import QUIET, LagSample, LagSampler, QuietGate

PLANT = Path(__file__).resolve().parents[2]


def sample(at: float, lag: int, end: int) -> LagSample:
    return LagSample(at, {0: lag}, {0: end})


def test_the_gate_stays_shut_while_a_reading_is_still_arriving_after_a_lag_of_zero() -> None:
    gate = QuietGate(hold=2.0)
    # lag 0 at once (the old end: the first such sample stopped the plant), then a sensor's last reading lands
    assert not gate(sample(100.0, 0, 50))
    assert not gate(sample(100.5, 1, 51))
    assert not gate(sample(101.0, 0, 51))  # consumed, but the log end moved 0.5 s ago
    assert not gate(sample(102.4, 0, 51))
    assert gate(sample(102.5, 0, 51))  # 2 s without a new record, and nothing behind


def test_the_gate_needs_lag_zero_at_the_end_of_the_hold() -> None:
    gate = QuietGate(hold=1.0)
    assert not gate(sample(0.0, 3, 10))
    assert not gate(sample(5.0, 3, 10))  # quiet but behind: the group has not stored it
    assert gate(sample(5.5, 0, 10))


def test_the_plant_names_the_command_groups_of_its_kafka_controlled_sensors() -> None:
    for profile in ("cluster", "cluster_secure"):
        manifest = effective_profile(PLANT, profile)
        settings = PlantSettings.of(manifest, kafka_settings(manifest), 3000)
        # group_template "{group}": each instance's own group (the MQTT sensors take their commands from Kafka)
        assert settings.control_groups == ("sensors-0", "sensors-1", "sensors-2", "mqtt_sensors"), profile
    assert PlantSettings.of(effective_profile(PLANT, "cluster"), {}, 3000).control_groups[0] == \
        "sensor_monitoring.sensors-0:sensors/control"  # the transport's default template


def test_a_lost_reading_says_whether_kafka_holds_it() -> None:
    on_topic = Counter({("vib-2", 61): 1, ("vib-2", 62): 1})
    assert lost_note([("vib-2", 62)], on_topic) == "first: [('vib-2', 62)]; on Kafka: 1 of 1"
    assert lost_note([("vib-2", 62), ("vib-2", 70)], on_topic) == \
        "first: [('vib-2', 62), ('vib-2', 70)]; on Kafka: 1 of 2 (first: [('vib-2', 62)])"


@pytest.mark.servers
def test_committed_by_tells_which_groups_handled_a_command(kafka_bootstrap: str) -> None:
    topic = f"drill-control-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap, **QUIET})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, **QUIET})
    for n in range(3):
        producer.produce(topic, b"command %d" % n, key=b"drill")
    assert producer.flush(30) == 0
    applied, silent = f"applied-{uuid.uuid4().hex[:6]}", f"silent-{uuid.uuid4().hex[:6]}"
    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": applied, "enable.auto.commit": False,
                       **QUIET})
    try:
        reader.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)  # handled offsets 0 and 1
    finally:
        reader.close()
    sampler = LagSampler(kafka_bootstrap, applied, topic, 1)
    try:
        assert sampler.committed_by([applied, silent], topic, 0) == {applied: 2, silent: -1}
        assert sampler.sample().ends == {0: 3}  # the log end, for QuietGate
    finally:
        sampler.stop()
