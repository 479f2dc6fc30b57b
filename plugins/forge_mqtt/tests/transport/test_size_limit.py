"""Oversized payloads are refused at the transport (max_message_bytes, from the manifest) and
dead-lettered as too_large without their body, on real Mosquitto (issue 11 §3)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from forge_core.runtime import Runtime, load_plant

from forge_mqtt.testing import MosquittoServer

MANIFEST = """
version: 1
plant: {{name: sized}}
plugins: [mqtt]
transports:
  edge: {{type: mqtt, settings: {{host: {host}, port: {port}, max_message_bytes: 1000, client_id: {client}}}}}
components:
  monitor: {{type: forge.heartbeat_monitor, params: {{topics: ["big/+"]}}}}
storage: {{migrate_on_start: false}}
"""


def _publish(broker: MosquittoServer, items: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    for topic, body in items:
        client.publish(topic, body, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_a_message_over_max_message_bytes_is_refused_and_dead_lettered_without_its_body(
        mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    (tmp_path / "plant.yaml").write_text(MANIFEST.format(host=mosquitto_server.host, port=mosquitto_server.port,
                                                         client=f"sized-{uuid.uuid4().hex[:8]}"))
    plugins, manifest = load_plant(tmp_path)

    async def body() -> None:
        runtime = Runtime(manifest, plugins, serve_health=False)
        await runtime.start()
        try:
            await asyncio.sleep(0.2)
            huge = b'{"title": "' + b"x" * 200_000 + b'"}'
            await asyncio.to_thread(_publish, mosquitto_server, [("big/1", huge), ("big/2", b"not json")])
            channel = runtime.dead_letters
            await kit.until(lambda: channel.total >= 2, 10, lambda: str(channel.counts))
            assert channel.counts == {"too_large": 1, "decode_error": 1}
            letter = next(letter for letter in channel.recent if letter.reason == "too_large")
            assert (letter.topic, letter.transport, letter.size) == ("big/1", "edge", len(huge))
            assert letter.body is None and letter.envelope is None and letter.content() == b""
            assert "max_message_bytes 1000" in letter.detail
            assert runtime.transports["edge"].stats["too_large"] == 1  # type: ignore[attr-defined]
        finally:
            await runtime.stop()

    asyncio.run(body())
