"""A Sparkplug test plant on a real Mosquitto, and a plain paho client that sees the wire."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from forge_core import Envelope
from forge_core.runtime import Runtime, load_plant

from forge_sparkplug.codec import Payload, decode

#: a 1 s lease lapsed under load (18 times in one run) and made failover tests flaky
TACTICS = {"leader": {"use": "memory", "ttl": 3.0, "renew_every": 0.5, "retry_every": 0.2}}


@dataclass
class Seen:
    topic: str
    body: bytes
    qos: int
    retain: bool

    def payload(self, datatype_of: dict[int, int] | None = None) -> Payload:
        return decode(self.body, datatype_of=datatype_of)


class Wire:
    """A plain paho client on ``spBv1.0/#``: every message as the broker delivered it."""

    def __init__(self, host: str, port: int, client_id: str = "wire") -> None:
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(host, port)
        self.client.subscribe("spBv1.0/#", qos=1)
        self.client.loop_start()
        if not subscribed.wait(15):  # the broker's SUBACK: from here on the wire misses nothing
            self.close()
            raise AssertionError(f"wire {client_id!r}: no SUBACK for spBv1.0/# from {host}:{port} within 15 s "
                                 f"(connected: {self.client.is_connected()})")

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.append(Seen(message.topic, bytes(message.payload), message.qos, bool(message.retain)))

    def on(self, topic: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.topic == topic]

    def publish(self, topic: str, body: bytes, qos: int = 0, retain: bool = False) -> None:
        self.client.publish(topic, body, qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition",
                seen: Callable[[], Any] | None = None) -> Any:
    """Poll ``condition`` until it is true (its value) or ``timeout`` seconds pass (AssertionError naming ``what``
    and, when given, what ``seen()`` shows at that moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    shown = f"; saw {seen()}" if seen is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{shown}")


class SparkplugPlant:
    """A plant directory with the given components, run by a Runtime on the real clock."""

    def __init__(self, root: Path, components: dict[str, Any], broker: tuple[str, int],
                 tactics: dict[str, Any] | None = None) -> None:
        self.root = root
        self.broker = broker
        manifest = {"version": 1, "plant": {"name": "spb_test"}, "plugins": ["sparkplug"],
                    "transports": {"bus": {"type": "memory"}}, "default_transport": "bus",
                    "tactics": tactics or TACTICS, "components": components, "runtime": {"health": False}}
        root.mkdir(parents=True, exist_ok=True)
        (root / "plant.yaml").write_text(json.dumps(manifest))
        self.bus_seen: list[Envelope] = []
        self.runtime: Runtime | None = None

    async def start(self) -> SparkplugPlant:
        plugins, manifest = load_plant(self.root / "plant.yaml")
        self.runtime = Runtime(manifest, plugins, serve_health=False, data_dir=self.root / ".forge")
        await self.runtime.start()
        await self.runtime.bus.subscribe("sparkplug/#", self.bus_seen.append, owner="test")
        return self

    def component(self, name: str) -> Any:
        assert self.runtime is not None
        return self.runtime.supervisors[name].instance

    def sent(self, type_: str) -> list[dict[str, Any]]:
        return [e.payload for e in self.bus_seen if e.type == type_]

    async def publish(self, topic: str, type_: str, payload: Any) -> None:
        assert self.runtime is not None
        await self.runtime.bus.publish(topic, type_, payload, source="test")

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()


def run_plant(root: Path, mosquitto: Any, components: dict[str, Any],
              scenario: Callable[[SparkplugPlant], Awaitable[None]], *, tactics: dict[str, Any] | None = None) -> None:
    """Start a :class:`SparkplugPlant` of ``components`` in ``root``, await ``scenario(plant)``, stop the plant
    (also when the scenario fails)."""
    async def main() -> None:
        plant = SparkplugPlant(root, components, (mosquitto.host, mosquitto.port), tactics)
        await plant.start()
        try:
            await scenario(plant)
        finally:
            await plant.stop()

    asyncio.run(main())


def broker_params(host: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"host": host, "port": port, "keepalive": 5, "reconnect_min_delay": 0.5, "reconnect_max_delay": 1.0,
            **extra}


@pytest.fixture
def wire(mosquitto_server: Any) -> Any:
    client = Wire(mosquitto_server.host, mosquitto_server.port, client_id=f"wire-{time.monotonic_ns()}")
    yield client
    client.close()
