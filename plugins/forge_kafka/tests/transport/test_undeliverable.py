"""The publisher gives up on no record silently: each one a final delivery error leaves (too large
for the topic, a topic that does not exist, the broker gone past ``message.timeout.ms``, queued at
close with the broker down) reaches the transport's ``on_undeliverable`` (the runtime's
``undeliverable`` dead letter) with its bytes, key and topic, the error named. On real Apache Kafka:
the session's broker, or one of this module's own where the broker is stopped."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from forge_core import Envelope, RawMessage, TransportError

from forge_kafka import KafkaTransport
from forge_kafka.testing import KafkaCluster
from forge_kafka.transport.undeliverable import KEY_HEADER, KafkaUndeliverable

from ..conftest import FAST, envelope, read_topic, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]

Letter = tuple[str, RawMessage, BaseException]


def collecting(transport: KafkaTransport) -> list[Letter]:
    """What the runtime would make dead letters of, as ``on_undeliverable`` hears it."""
    letters: list[Letter] = []

    def hear(topic: str, message: Envelope | RawMessage, error: BaseException) -> None:
        assert isinstance(message, RawMessage)
        letters.append((topic, message, error))

    transport.on_undeliverable = hear
    return letters


def numbers(letters: list[Letter]) -> list[int]:
    return [orjson.loads(raw.body)["data"]["n"] for _, raw, _ in letters]


@pytest.fixture(scope="module")
def own_broker() -> Iterator[KafkaCluster]:
    """A broker of this module's own: the tests stop it."""
    with KafkaCluster(1) as cluster:
        yield cluster


def test_a_record_over_the_topics_limit_is_dead_lettered_and_the_rest_delivered(kafka_bootstrap: str) -> None:
    topic = f"big{uuid.uuid4().hex[:6]}"

    async def body() -> list[Letter]:
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, **FAST,
                                         "topics": {topic: {"config": {"max.message.bytes": "4096"}}}})
        letters = collecting(kafka)
        await kafka.connect()
        try:
            batch = [envelope({"n": n, "pad": "x" * (20000 if n == 4 else 100)}, key="press-1") for n in range(10)]
            await kafka.publish_batch(topic, batch)
            assert await kafka.flush(30) == 0
            await wait_until(lambda: len(letters) >= 1)
            await asyncio.sleep(0.5)  # a second letter would be a wrong one
        finally:
            await kafka.close()
        return letters

    letters = asyncio.run(body())
    assert len(letters) == 1, [str(error) for _, _, error in letters]
    where, raw, error = letters[0]
    assert where == topic and numbers(letters) == [4]
    assert raw.headers[KEY_HEADER] == "press-1"
    assert isinstance(error, KafkaUndeliverable) and error.code_name == "MSG_SIZE_TOO_LARGE"
    assert topic in str(error) and f"{len(raw.body)} bytes" in str(error) and "127.0.0.1" in str(error)
    delivered = [orjson.loads(record.value())["data"]["n"] for record in read_topic(kafka_bootstrap, topic, 9)]
    assert delivered == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # the others, in publish order


def test_a_record_to_a_topic_that_does_not_exist_is_dead_lettered(kafka_bootstrap: str) -> None:
    topic = f"nowhere{uuid.uuid4().hex[:6]}"

    async def body() -> list[Letter]:
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, **FAST, "create_topics": False, "producer": {
            "allow.auto.create.topics": False, "message.timeout.ms": 3000}})
        letters = collecting(kafka)
        await kafka.connect()
        try:
            await kafka.publish(topic, envelope({"n": 1}, key="k"))
            await wait_until(lambda: len(letters) >= 1, timeout=30)
        finally:
            await kafka.close()
        return letters

    letters = asyncio.run(body())
    assert [(where, n) for (where, _, _), n in zip(letters, numbers(letters), strict=True)] == [(topic, 1)]
    assert topic in str(letters[0][2])


def test_every_record_queued_when_the_broker_stops_is_a_dead_letter(own_broker: KafkaCluster) -> None:
    topic = f"down{uuid.uuid4().hex[:6]}"
    total = 300

    async def body() -> tuple[list[Letter], dict[str, Any]]:
        if not own_broker.running:
            own_broker.start()
        kafka = KafkaTransport("kafka", {"bootstrap": own_broker.bootstrap, **FAST, "topics": {topic: {}},
                                         "producer": {"message.timeout.ms": 3000}})
        letters = collecting(kafka)
        await kafka.connect()
        try:
            await kafka.publish(topic, envelope({"n": -1}))
            assert await kafka.flush(30) == 0
            await asyncio.get_running_loop().run_in_executor(None, own_broker.stop, 0)
            for n in range(total):
                await kafka.publish(topic, envelope({"n": n}, key=f"m{n % 3}"))
            await wait_until(lambda: len(letters) >= total, timeout=60)
            await asyncio.sleep(0.5)
        finally:
            await kafka.close()
        return letters, kafka.health().stats

    letters, stats = asyncio.run(body())
    assert sorted(numbers(letters)) == list(range(total))  # each one once, none lost
    assert {where for where, _, _ in letters} == {topic}
    assert {error.code_name for _, _, error in letters if isinstance(error, KafkaUndeliverable)} == {"_MSG_TIMED_OUT"}
    assert stats["publish_undeliverable"] == total


def test_records_queued_at_close_with_the_broker_down_are_dead_letters(own_broker: KafkaCluster,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    topic = f"closing{uuid.uuid4().hex[:6]}"
    total = 200

    async def body() -> list[Letter]:
        if not own_broker.running:
            own_broker.start()
        kafka = KafkaTransport("kafka", {"bootstrap": own_broker.bootstrap, **FAST, "topics": {topic: {}},
                                         "close_timeout": 1.0})
        letters = collecting(kafka)
        await kafka.connect()
        await kafka.publish(topic, envelope({"n": -1}))
        assert await kafka.flush(30) == 0
        await asyncio.get_running_loop().run_in_executor(None, own_broker.stop, 0)
        for n in range(total):
            await kafka.publish(topic, envelope({"n": n}, key=f"m{n % 3}"))
        with caplog.at_level(logging.ERROR, logger="forge.transport.kafka"):
            await kafka.close()
        return letters

    letters = asyncio.run(body())
    assert sorted(numbers(letters)) == list(range(total))
    assert all(isinstance(error, KafkaUndeliverable) and error.code_name.startswith("_PURGE")
               for _, _, error in letters)
    assert any(f"{total} record(s) not delivered" in line and "close_timeout 1s" in line and "dead-lettered" in line
               for line in caplog.messages), caplog.messages


def test_a_confirmed_publish_raises_and_makes_no_dead_letter(kafka_bootstrap: str) -> None:
    topic = f"nowhere{uuid.uuid4().hex[:6]}"

    async def body() -> list[Letter]:
        kafka = KafkaTransport("kafka", {"bootstrap": kafka_bootstrap, **FAST, "create_topics": False,
                                         "confirm_publish": True, "producer": {
                                             "allow.auto.create.topics": False, "message.timeout.ms": 3000}})
        letters = collecting(kafka)
        await kafka.connect()
        try:
            with pytest.raises(TransportError, match=topic):
                await kafka.publish(topic, envelope({"n": 1}))
            await asyncio.sleep(0.5)
        finally:
            await kafka.close()
        return letters

    assert asyncio.run(body()) == []  # the caller had the exception: one report per record
