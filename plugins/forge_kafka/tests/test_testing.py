"""KafkaServer: a real Kafka-protocol broker (Tansu) that confluent-kafka talks to."""

from __future__ import annotations

import time
import uuid

import pytest
from forge_core.testing import ServerError

from forge_kafka.testing import KafkaServer, find_tansu, kafka_api_versions_probe

ck = pytest.importorskip("confluent_kafka", reason="pip install confluent-kafka")

# Tansu holds a group join for about half the session timeout; keep it short in tests.
GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 10000}


def _consume(consumer: ck.Consumer, count: int, timeout: float = 20.0) -> list[ck.Message]:
    got: list[ck.Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        got.append(message)
    return got


def _consumer(bootstrap: str, group: str, **extra: object) -> ck.Consumer:
    return ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                        **GROUP, **extra})


def test_binary_is_found_and_answers_api_versions(tansu_server: KafkaServer) -> None:
    assert find_tansu()
    assert tansu_server.bootstrap == f"127.0.0.1:{tansu_server.port}"
    assert kafka_api_versions_probe(tansu_server.host, tansu_server.port)


def test_produce_consume_round_trip(kafka_bootstrap: str) -> None:
    topic = f"rt.{uuid.uuid4().hex[:8]}"
    producer = ck.Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for n in range(20):
        producer.produce(topic, key=b"m1", value=b'{"n": %d}' % n, headers={"ce_type": "test.reading"})
    assert producer.flush(10) == 0
    consumer = _consumer(kafka_bootstrap, f"g-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([topic])
    try:
        got = _consume(consumer, 20)
    finally:
        consumer.close()
    assert [m.value() for m in got] == [b'{"n": %d}' % n for n in range(20)]  # one key: one partition, in order
    assert dict(got[0].headers())["ce_type"] == b"test.reading"


def test_consumer_group_commit_is_resumed_by_the_next_member(kafka_bootstrap: str) -> None:
    topic, group = f"commit.{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:6]}"
    producer = ck.Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(10):
        producer.produce(topic, key=b"k", value=str(n).encode())
    producer.flush(10)
    first = _consumer(kafka_bootstrap, group, **{"enable.auto.commit": False})
    first.subscribe([topic])
    got = _consume(first, 4)
    assert [m.value() for m in got] == [b"0", b"1", b"2", b"3"]
    first.commit(message=got[-1], asynchronous=False)
    first.close()
    second = _consumer(kafka_bootstrap, group)
    second.subscribe([topic])
    try:
        rest = _consume(second, 6)
    finally:
        second.close()
    assert [m.value() for m in rest] == [str(n).encode() for n in range(4, 10)]


def test_stop_start_and_kill_keep_the_port() -> None:
    with KafkaServer() as server:
        port = server.port
        server.stop()
        assert not server.running and not kafka_api_versions_probe(server.host, port)
        server.start()
        assert server.port == port and kafka_api_versions_probe(server.host, port)
        server.kill()
        server.start()
        producer = ck.Producer({"bootstrap.servers": server.bootstrap})
        producer.produce("after.restart", value=b"x")
        assert producer.flush(10) == 0
    assert not server.running


def test_taken_port_is_refused_with_the_log() -> None:
    with KafkaServer() as server:
        clash = KafkaServer(port=server.port)  # the port is taken: Tansu exits, we say why
        with pytest.raises(ServerError, match=r"kafka .*127\.0\.0\.1"):
            clash.start_timeout = 5
            clash.start()
        clash.close()
