"""sparkplug.host under virtual time (the testing kit's TestPlant): its timers run on the plant clock.

The host's MQTT client is replaced by an in-memory stand-in (paho's thread cannot run under a virtual
clock); everything else is the real component. Before the host used the plant clock, its reorder window
and its rebirth throttle ran on ``time.monotonic()``: minutes of plant time passed in milliseconds of
wall time and a seq gap was never repaired under ``--simulate``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from forge_core import hookimpl
from forge_core.testing import TestPlant

from forge_sparkplug import Host
from forge_sparkplug.codec import Metric, decode, encode
from forge_sparkplug.mqtt.client import Received, Will

G = "vt"


class FakeClient:
    """``SparkplugClient``'s surface, connected at once; what the host publishes is kept in ``sent``."""

    def __init__(self, owner: Host) -> None:
        self.owner = owner
        self.broker = "fake"
        self.connected = False
        self.connects = 0
        self.sent: list[tuple[str, bytes, int, bool]] = []
        self.will: Will | None = None

    def start(self) -> None:
        self.will = self.owner._will()
        self.connected = True
        self.connects += 1
        asyncio.get_running_loop().create_task(self.owner._connected())

    def publish(self, topic: str, body: bytes, qos: int = 0, retain: bool = False) -> int | None:
        self.sent.append((topic, body, qos, retain))
        return len(self.sent)

    async def publish_written(self, topic: str, body: bytes, qos: int = 0, retain: bool = False,
                              timeout: float = 5.0) -> bool:
        return self.publish(topic, body, qos, retain) is not None

    async def probe(self, timeout: float = 5.0) -> bool:
        return self.connected

    def subscribe(self, filters: list[tuple[str, int]]) -> None:
        pass

    async def stop(self, *, will: bool = False, timeout: float = 2.0) -> None:
        self.connected = False

    def drop(self) -> None:
        self.connected = False


class VirtualTimeHost(Host):
    clients: list[FakeClient] = []

    def _new_client(self) -> FakeClient:  # type: ignore[override]
        client = FakeClient(self)
        VirtualTimeHost.clients.append(client)
        return client


class _Plugin:
    @hookimpl
    def forge_register_components(self, registry: Any) -> None:
        registry.add("test.vt_host", VirtualTimeHost, description="sparkplug.host with an in-memory MQTT client")


def _plant(root: Path) -> TestPlant:
    manifest = {"version": 1, "plant": {"name": "spb_vt"}, "plugins": ["sparkplug"],
                "transports": {"bus": {"type": "memory"}}, "default_transport": "bus",
                "tactics": {"leader": {"use": "memory", "ttl": 3.0, "renew_every": 0.5, "retry_every": 0.2}},
                "components": {"host": {"type": "test.vt_host", "params": {
                    "mqtt": {"host": "unused", "port": 1883}, "host_id": "vt-host", "groups": [G],
                    "reorder_timeout": 30.0}}},
                "runtime": {"health": False}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(json.dumps(manifest))
    return TestPlant(root, seed=1, plugins=[("sparkplug_vt_host", _Plugin())])


def _ncmds(client: FakeClient) -> list[dict[str | None, Any]]:
    return [{m.name: m.value for m in decode(body).metrics} for topic, body, _, _ in client.sent
            if topic == f"spBv1.0/{G}/NCMD/n1"]


def test_the_reorder_timeout_and_state_timestamps_are_plant_time(tmp_path: Path) -> None:
    """tck-id-operational-behavior-host-reordering-param / -start / -rebirth under virtual time: a gap stays open
    for reorder_timeout seconds of plant time (not less, not wall time), then the host asks for a rebirth; the
    STATE birth and its Will carry the plant clock's time."""
    VirtualTimeHost.clients.clear()
    birth = encode(1, [Metric(name="bdSeq", datatype=4, value=0), Metric(name="X", alias=1, datatype=3, value=0)],
                   seq=0)

    def data(seq: int) -> Received:
        return Received(f"spBv1.0/{G}/NDATA/n1", encode(2, [Metric(alias=1, value=seq, timestamp=2)], seq=seq,
                                                         datatype_of={1: 3}), False)

    with _plant(tmp_path / "plant") as plant:
        plant.run_until(lambda: bool(VirtualTimeHost.clients) and VirtualTimeHost.clients[-1].will is not None
                        and getattr(plant.component("host"), "primary", False), timeout=30)
        host = plant.component("host")
        assert isinstance(host, VirtualTimeHost)
        client = VirtualTimeHost.clients[-1]
        assert client.will is not None
        will = json.loads(client.will.body)
        assert will == {"online": False, "timestamp": will["timestamp"]}
        assert abs(will["timestamp"] / 1000 - plant.clock.time()) < 30, "the Will is stamped with the plant clock"
        states = [json.loads(body) for topic, body, _, _ in client.sent if topic == "spBv1.0/STATE/vt-host"]
        assert states[-1] == {"online": True, "timestamp": will["timestamp"]}

        plant.clock.run(host._received([Received(f"spBv1.0/{G}/NBIRTH/n1", birth, False), data(2)]))  # 1 is missing
        plant.advance(20)  # plant time: the window (30 s) is still open
        assert host.stats["seq_gaps"] == 0 and not _ncmds(client)
        plant.advance(15)  # past it
        assert host.stats["seq_gaps"] == 1, host.stats
        (request,) = _ncmds(client)
        assert request["Node Control/Rebirth"] is True
