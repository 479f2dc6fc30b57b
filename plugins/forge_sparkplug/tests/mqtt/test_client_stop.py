"""SparkplugClient.stop() while the connection is still being made leaves no connection at the broker.

paho's disconnect() before CONNACK sends nothing (no socket yet, or its state overwritten by the connect in
progress); the connection then completed, the thread was stopped and the socket stayed open: a connection
without an owner, holding the client id, receiving nothing, until the broker's keepalive expired it and
published its Will. A host switching roles (observer -> primary) hit it on every election that came before
its first CONNACK (found by benchmarks/bench_sparkplug.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from forge_mqtt import MqttSettings

from forge_sparkplug.mqtt.client import SparkplugClient, Will

pytestmark = [pytest.mark.servers, pytest.mark.timeout(60)]


async def _nothing() -> None:
    return None


async def _ignore(batch: object) -> None:
    return None


def test_stop_before_connack_leaves_no_connection_and_no_will(mosquitto_server: Any) -> None:
    wills: list[bytes] = []
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stop-watcher")
    watcher.on_message = lambda client, userdata, message: wills.append(bytes(message.payload))
    watcher.connect(mosquitto_server.host, mosquitto_server.port)
    watcher.subscribe("stop-test/will", qos=1)
    watcher.loop_start()
    settings = MqttSettings(host=mosquitto_server.host, port=mosquitto_server.port, keepalive=1)

    async def body() -> None:
        for attempt in range(5):
            client = SparkplugClient(settings, f"stop-early-{attempt}", name="stop-test",
                                     will=lambda: Will("stop-test/will", b"gone", 1, False),
                                     on_connect=_nothing, on_disconnect=_nothing, on_messages=_ignore)
            client.start()
            await asyncio.sleep(attempt * 0.005)  # before, around and after the CONNACK
            await client.stop(will=False)
            assert client.client.socket() is None, f"attempt {attempt}: the socket outlived stop()"
        await asyncio.sleep(3)  # past 1.5 x keepalive: an unowned connection would have been expired, Will sent

    try:
        asyncio.run(body())
        time.sleep(0.5)
        assert wills == [], "stop(will=False) must not leave a connection whose Will the broker later sends"
        assert not [t for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-stop-early")]
    finally:
        watcher.loop_stop()
        watcher.disconnect()
