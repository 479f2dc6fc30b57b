"""Delivery: a raising callback is redelivered locally, then reported undeliverable."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from forge_mqtt.testing import MosquittoServer

READING = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["machineId", "value"],
    "properties": {"machineId": {"type": "integer"}, "value": {"type": "number"}, "title": {"type": "string"}},
}

def test_raising_callback_is_redelivered_locally_then_undeliverable(mosquitto_server: MosquittoServer,
                                                                   tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        # binary: the callback sees the bare payload as the body
        transport = kit.make_transport(mosquitto_server, tmp_path, "redeliver", max_redeliveries=2,
                                       content_mode="binary")
        await transport.connect()
        attempts: list[Any] = []
        given_up: list[tuple[str, Any, BaseException]] = []
        transport.on_undeliverable = lambda topic, raw, exc: given_up.append((topic, raw, exc))

        async def always_fails(topic: str, message: Any) -> None:
            attempts.append(message.body)
            if b'"poison"' in message.body:
                raise ValueError("cannot handle")

        await transport.subscribe("jobs/#", always_fails)
        await asyncio.sleep(0.05)
        await transport.publish("jobs/1", kit.envelope("poison"))
        await transport.publish("jobs/2", kit.envelope("fine"))
        await kit.until(lambda: len(attempts) >= 4, 5)
        await asyncio.sleep(0.3)
        assert attempts == [b'"poison"'] * 3 + [b'"fine"']  # 1 + max_redeliveries, then the next one
        assert [(t, str(e)) for t, _, e in given_up] == [("jobs/1", "cannot handle")]
        stats = transport.health().stats
        assert (stats["redelivered"], stats["undeliverable"], stats["delivered"]) == (2, 1, 1)
        await transport.close()

    asyncio.run(body())


def test_backlog_age_is_how_long_the_oldest_undelivered_message_has_waited(mosquitto_server: MosquittoServer,
                                                                          tmp_path: Path, kit: Any) -> None:
    """What a liveness monitor needs to not blame sources for a flood in the inbox (issue 11 §3):
    messages read but not yet delivered, behind a slow callback, show as backlog_age (and inbox_age
    in health); an idle transport has none."""
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "backlog")
        await transport.connect()
        assert transport.backlog_age() == 0.0
        got: list[bytes] = []

        async def slow(topic: str, message: Any) -> None:
            await asyncio.sleep(0.02)  # 40 messages take 0.8 s
            got.append(message.body)

        await transport.subscribe("flood/+", slow)
        await asyncio.sleep(0.05)
        for i in range(40):
            await transport.publish(f"flood/{i % 4}", kit.envelope(i))
        await kit.until(lambda: len(got) >= 20, 5)
        age = transport.backlog_age()
        assert 0.25 < age < 2.0, age  # the oldest waiting message was read when the burst arrived
        assert transport.health().stats["inbox_age"] > 0.25
        await kit.until(lambda: len(got) == 40, 5)
        await asyncio.sleep(0.05)
        assert transport.backlog_age() == 0.0 and transport.health().stats["inbox"] == 0
        await transport.close()

    asyncio.run(body())


def test_backlog_age_counts_packets_left_unread_in_the_socket(mosquitto_server: MosquittoServer,
                                                             tmp_path: Path, kit: Any) -> None:
    """Reads stop at a bound; what stays in the socket is backlog too (else a monitor would take beats
    still in the socket for silence): from the first read that left packets, until one drains it."""
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "unread")
        await transport.connect()
        transport.connection.unread_since = time.monotonic() - 2.0  # a read left packets 2 s ago
        assert 1.9 < transport.backlog_age() < 3.0
        transport.connection.unread_since = None
        assert transport.backlog_age() == 0.0
        await transport.close()

    asyncio.run(body())
