"""Delivery: a raising callback is redelivered locally, then reported undeliverable."""

from __future__ import annotations

import asyncio
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
        transport = kit.make_transport(mosquitto_server, tmp_path, "redeliver", max_redeliveries=2)
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
