"""A start that fails partway (src/forge_core/runtime/runtime.py, ``Runtime.start``) gives back what it
had acquired before the error propagates: a transport already connected is closed (its client
threads would otherwise keep the process alive), telemetry is shut down."""

from __future__ import annotations

import asyncio

import pytest

from forge_core.plant import load_plant
from forge_core.runtime import Runtime
from tests.conftest import MACHINE_PLUGIN

TRANSPORTS = MACHINE_PLUGIN + '''

from forge_core.transport.memory import MemoryTransport

EVENTS = []


class Recorded(MemoryTransport):
    async def connect(self):
        EVENTS.append(f"connect {self.name}")
        if self.name == "broken":
            raise RuntimeError("the broker refused: bad credentials")
        await super().connect()

    async def close(self):
        EVENTS.append(f"close {self.name}")
        await super().close()


def recorded(name, settings, context):
    return Recorded(name)


recorded.events = EVENTS


@hookimpl
def forge_register_transports(registry):
    registry.add("test.recorded", recorded)
'''

PLANT = """
version: 1
plant: {name: halfway}
local_plugins: [machines.py]
schemas: [schemas]
transports:
  bus: {type: test.recorded}
  broken: {type: test.recorded}
routes:
  - {from: bus, to: broken, topics: ["#"]}
components:
  m1: {type: test.machine, params: {interval: 1.0}}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
telemetry: {metrics: {exporter: console, interval: 3600}}
"""


def test_a_transport_failing_to_connect_closes_the_ones_already_connected(plant_dir, monkeypatch) -> None:
    from forge_core.telemetry import Telemetry

    shut: list[Telemetry] = []
    original = Telemetry.shutdown
    monkeypatch.setattr(Telemetry, "shutdown", lambda self: (shut.append(self), original(self))[1])
    plugins, manifest = load_plant(plant_dir(PLANT, plugin=TRANSPORTS))
    runtime = Runtime(manifest, plugins)
    with pytest.raises(RuntimeError, match="bad credentials"):
        asyncio.run(runtime.start())
    events = plugins.transports.get("test.recorded").value.events
    assert events == ["connect bus", "connect broken", "close bus"], events
    assert runtime.telemetry is not None and shut == [runtime.telemetry]
    assert not runtime.supervisors, "no component was started"
    summary = asyncio.run(runtime.stop())  # a caller's stop() after the failed start: nothing twice
    assert events == ["connect bus", "connect broken", "close bus"] and shut == [runtime.telemetry]
    assert summary.plant == "halfway"
