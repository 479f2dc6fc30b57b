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


def _subscribed_watcher(host: str, port: int, wills: list[bytes]) -> mqtt.Client:
    """A plain client on the Will topic, returned once the broker acknowledged its subscription."""
    subscribed = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stop-watcher")
    watcher.on_message = lambda client, userdata, message: wills.append(bytes(message.payload))
    watcher.on_subscribe = lambda *args: subscribed.set()
    watcher.connect(host, port)
    watcher.subscribe("stop-test/will", qos=1)
    watcher.loop_start()
    if not subscribed.wait(15):
        watcher.loop_stop()
        raise AssertionError(f"no SUBACK for stop-test/will from {host}:{port} within 15 s")
    return watcher


def _canary(host: str, port: int) -> mqtt.Client:
    """A connection left without an owner on purpose (CONNECT sent, then never read nor pinged), keepalive 2
    and a Will on the same topic: the broker expires it 3 s on (1.5 x keepalive), after any unowned
    connection of the keepalive-1 clients made before it (1.5 s on), so its Will marks their time as past."""
    canary = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stop-canary")
    canary.will_set("stop-test/will", b"canary", qos=1)
    canary.connect(host, port, keepalive=2)
    return canary


def test_stop_before_connack_leaves_no_connection_and_no_will(mosquitto_server: Any) -> None:
    wills: list[bytes] = []
    watcher = _subscribed_watcher(mosquitto_server.host, mosquitto_server.port, wills)
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

    canary = None
    try:
        asyncio.run(body())
        canary = _canary(mosquitto_server.host, mosquitto_server.port)
        deadline = time.monotonic() + 30
        while b"canary" not in wills:  # the Will of an unowned connection of theirs would have come by now
            assert time.monotonic() < deadline, f"the canary's Will not within 30 s (Wills seen: {wills})"
            time.sleep(0.05)
        assert wills == [b"canary"], "stop(will=False) must not leave a connection whose Will the broker later sends"
        while threads := [t.name for t in threading.enumerate() if t.name.startswith("paho-mqtt-client-stop-early")]:
            assert time.monotonic() < deadline, f"paho threads outlived stop(): {threads}"
            time.sleep(0.05)
    finally:
        if canary is not None:
            canary.socket().close()
        watcher.loop_stop()
        watcher.disconnect()
