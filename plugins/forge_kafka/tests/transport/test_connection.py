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
