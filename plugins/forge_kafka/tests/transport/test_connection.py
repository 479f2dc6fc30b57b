"""The connection: not-ready naming the broker; the producer keys records and topics are created on connect."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from forge_core import TransportNotReady
from forge_core.testing import find_free_port

from forge_kafka import KafkaSettings, KafkaTransport
from forge_kafka.transport import KafkaConnection

from ..conftest import envelope, read_topic

pytestmark = pytest.mark.timeout(120)



def test_unreachable_broker_is_not_ready_naming_the_broker() -> None:
    port = find_free_port()

    async def body() -> None:
        transport = KafkaTransport("orders", bootstrap=f"127.0.0.1:{port}", connect_timeout=1.0)
        with pytest.raises(TransportNotReady, match=rf"'orders': broker 127\.0\.0\.1:{port} unreachable"):
            await transport.connect()
        await transport.close()

    asyncio.run(body())


def test_key_is_the_envelope_key_or_source_and_topics_are_created(make_transport: Any,
                                                                  kafka_bootstrap: str) -> None:
    prefix = f"keys{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        transport = make_transport(topics={f"{prefix}/orders": {"partitions": 3}})
        await transport.connect()
        await transport.publish(f"{prefix}/orders", envelope({"n": 1}, key="order-7"))
        await transport.publish(f"{prefix}/orders", envelope({"n": 2}, source="machine-3"))
        assert await transport.flush() == 0
        await transport.close()

    asyncio.run(body())
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=5)
    assert len(metadata.topics[f"{prefix}.orders"].partitions) == 3
    keys = {record.key() for record in read_topic(kafka_bootstrap, f"{prefix}.orders", 2)}
    assert keys == {b"order-7", b"machine-3"}


def test_stall_watchdog_waits_longer_after_each_replacement_that_brought_no_ack() -> None:
    connection = KafkaConnection("k", KafkaSettings(bootstrap="x:1", stall_timeout=2.0), "p")
    up = {"brokers": {"b1": {"state": "UP", "nodeid": 1}}}
    stuck = orjson.dumps({**up, "msg_cnt": 5, "topics": {}}).decode()
    connection._on_stats(stuck)
    assert not connection._stalled  # waiting, but not for stall_timeout yet
    connection._acked_at -= 2.1
    connection._on_stats(stuck)
    assert connection._stalled
    # a replacement that brought no ack: the next stall needs twice the timeout (Backoff)
    connection._stall_wait.next()
    connection._stalled = False
    connection._on_stats(stuck)
    assert not connection._stalled
    connection._acked_at -= 4.1
    connection._on_stats(stuck)
    assert connection._stalled
    # acks flow again: back to the plain timeout
    acked = {**up, "msg_cnt": 5, "topics": {"t": {"partitions": {"0": {"acked_msgid": 7}}}}}
    connection._on_stats(orjson.dumps(acked).decode())
    assert connection._stall_wait.peek() == 2.0


def test_epoch_bumps_without_an_ack_ask_for_a_new_producer_at_once() -> None:
    # Tansu after a restart: librdkafka bumps the epoch again and again, nothing is acked, no fatal error
    connection = KafkaConnection("k", KafkaSettings(bootstrap="x:1", stall_timeout=60.0), "p")
    connection.producer = object()  # type: ignore[assignment]
    up = {"brokers": {"b1": {"state": "UP", "nodeid": 1}}, "msg_cnt": 5, "topics": {}}
    connection._on_stats(orjson.dumps({**up, "msg_cnt": 0, "eos": {"producer_epoch": 4}}).decode())  # base: 4
    connection._on_stats(orjson.dumps({**up, "eos": {"producer_epoch": 6}}).decode())
    assert connection._replace_wanted is None  # one or two bumps: librdkafka's own recovery
    connection._on_stats(orjson.dumps({**up, "eos": {"producer_epoch": 7}}).decode())
    assert connection._replace_wanted is not None and "unknown producer id" in connection._replace_wanted[1]


class _RecordingProducer:
    """Stands in for confluent_kafka.Producer: records what is produced, holds nothing."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.produced: list[Any] = []

    def produce(self, topic: str, value: Any, key: Any, *_: Any, **__: Any) -> None:  # partition, on_delivery
        self.produced.append(value)

    def purge(self, **_: Any) -> None:
        pass

    def poll(self, _: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


def test_replacement_resends_what_the_producer_gave_back_in_publish_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import forge_kafka.transport.connection as module

    monkeypatch.setattr(module, "Producer", _RecordingProducer)
    connection = KafkaConnection("k", KafkaSettings(bootstrap="x:1"), "p")
    old = _RecordingProducer()
    connection.producer = old  # type: ignore[assignment]
    # purge and fatal reports come back in no useful order (queued ones before in-flight ones)
    for seq in (5, 6, 7, 1, 2, 3, 4, 0):
        connection.hold((seq, "t", b"%d" % seq, b"k", [], lambda *_: None), "fatal")
    assert connection._replace_wanted is not None
    new = connection.replace_producer(old)  # type: ignore[arg-type]
    assert new is connection.producer and new is not old
    assert new.produced == [b"%d" % n for n in range(8)]  # type: ignore[attr-defined]
    assert connection.stats["producer_replaced"] == 1 and connection.stats["resent"] == 8
    assert connection._replace_wanted is None and not connection.held
    assert connection.replace_producer(old) is new  # a second ask for the same producer: nothing more  # type: ignore[arg-type]


def test_publish_on_a_fatal_producer_replaces_it_and_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    from confluent_kafka import KafkaError, KafkaException

    import forge_kafka.transport.connection as module
    from forge_kafka.transport import KafkaPublisher

    class Fatal(_RecordingProducer):
        def produce(self, topic: str, value: Any, key: Any, *_: Any, **__: Any) -> None:
            raise KafkaException(KafkaError(KafkaError._FATAL, "unknown producer id", fatal=True))

    monkeypatch.setattr(module, "Producer", _RecordingProducer)
    connection = KafkaConnection("k", KafkaSettings(bootstrap="x:1"), "p")
    publisher = KafkaPublisher(connection)
    connection.producer = Fatal()  # type: ignore[assignment]
    # what librdkafka purged when it went fatal, reported before the caller's next publish
    connection.hold((-2, "t.x", b"held-1", b"k", [], lambda *_: None), "fatal")
    connection.hold((-1, "t.x", b"held-2", b"k", [], lambda *_: None), "fatal")

    async def body() -> None:
        connection.loop = asyncio.get_running_loop()
        await publisher.publish("t/x", envelope({"n": 1}, key="k"))

    asyncio.run(body())
    produced = connection.producer.produced  # type: ignore[union-attr]
    assert produced[:2] == [b"held-1", b"held-2"] and len(produced) == 3  # the held ones first, in order
    assert connection.stats["producer_replaced"] == 1


def test_a_fatal_error_report_asks_for_a_new_producer_at_once() -> None:
    from confluent_kafka import KafkaError

    connection = KafkaConnection("k", KafkaSettings(bootstrap="x:1"), "p")
    connection.producer = object()  # type: ignore[assignment]
    connection._on_producer_error(KafkaError(KafkaError._TRANSPORT, "broker down"))
    assert connection._replace_wanted is None
    connection._on_producer_error(KafkaError(KafkaError.UNKNOWN_PRODUCER_ID, "forgotten", fatal=True))
    assert connection._replace_wanted is not None and connection.stats["producer_fatal"] == 1
