"""A small test plant: fake cutting machines + the blade scheduler, on the memory bus.

The protocol is forge_sched's own: its ``sched.*`` types (schemas registered by the plugin) on the
scheduler's default topics; the bindings type plain-JSON bodies as a machine without Forge sends them.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import TestPlant

MACHINE_PLUGIN = '''
from forge_core import Component, Settings, hookimpl, subscribe


class MachineParams(Settings):
    first_id: int = 0
    heartbeat_interval: float = 1.0
    swap_time: float = 2.0
    command_secret: str | None = None


class FakeCuttingMachine(Component):
    """Beats like a cutting machine (bladeType only while WORKING); obeys fenced assign/swap."""

    Params = MachineParams

    async def start(self):
        self.machine_id = self.params.first_id + self.ctx.replica
        self.blade = None
        self.swapping = False
        self.commands = []          # (type, bladeType, epoch) of every command applied
        if self.params.command_secret:  # the plant key: unsigned or badly signed commands are forged
            self.ctx.fence.keys["scheduler"] = self.params.command_secret.encode()
        self.ctx.every(self.params.heartbeat_interval, self.beat,
                       initial_delay=0.1 * (self.ctx.replica % 10))

    async def beat(self):
        body = {"title": "heartbeat", "machineId": self.machine_id}
        if self.blade is not None and not self.swapping:
            body["bladeType"] = self.blade
        await self.ctx.publish("heartbeats", "sched.machine_heartbeat", body, key=str(self.machine_id))

    @subscribe("sched/assign_blade", shared=False, fenced="scheduler")
    async def on_assign(self, envelope):
        if envelope.payload["machineId"] != self.machine_id:
            return
        self.commands.append(("assign", envelope.payload["bladeType"], envelope.payload.get("epoch")))
        self.blade = envelope.payload["bladeType"]

    @subscribe("sched/swap_blade", shared=False, fenced="scheduler")
    async def on_swap(self, envelope):
        if envelope.payload["machineId"] != self.machine_id:
            return
        self.commands.append(("swap", envelope.payload["bladeType"], envelope.payload.get("epoch")))
        self.swapping = True
        await self.ctx.clock.sleep(self.params.swap_time)
        self.blade, self.swapping = envelope.payload["bladeType"], False
        await self.ctx.publish("sched/blade_swapped", "sched.blade_swapped",
                               {"title": "BladeSwapped", "machineId": self.machine_id, "bladeType": self.blade})

    def recover(self):
        """What RECOVERY does to a machine: it loses its blade and waits again."""
        self.blade = None


@hookimpl
def forge_register_components(registry):
    registry.add("test.cutting_machine", FakeCuttingMachine)
'''

MANIFEST = """
version: 1
plant: {{name: sched_test}}
plugins: [sched]
local_plugins: [machines.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
bindings:
  - {{topic: heartbeats, type_field: title, type_map: {{heartbeat: sched.machine_heartbeat}}, source_field: machineId,
     key_field: machineId}}
  - {{topic: sched/assign_blade, type: sched.assign_blade, key_field: machineId}}
  - {{topic: sched/swap_blade, type: sched.swap_blade, key_field: machineId}}
  - {{topic: sched/blade_swapped, type: sched.blade_swapped, source_field: machineId, key_field: machineId}}
  - {{topic: sched/change_fresh_amount, type: sched.change_fresh_amount}}
  - {{topic: sched/fresh_amount_changed, type: sched.fresh_amount_changed}}
  - {{topic: storage/alert, type: sched.storage_alert}}
components:
  machine:
    type: test.cutting_machine
    replicas: {machines}
    params: {machine_params}
  scheduler:
    type: sched.blade_scheduler
    replicas: 2
    params: {scheduler_params}
tactics:
  leader: {{use: memory, ttl: 5.0, renew_every: 3.0, retry_every: 1.0}}
  state: {{use: memory}}
  dedup: {{window: 1.0}}
storage: {{migrate_on_start: false}}
"""


def write_plant(root: Path, *, machines: int = 3, machine_params: dict[str, Any] | None = None,
                scheduler_params: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "machines.py").write_text(MACHINE_PLUGIN)
    (root / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(
        machines=machines,
        machine_params=json.dumps(machine_params or {"heartbeat_interval": 1.0}),
        scheduler_params=json.dumps(scheduler_params or {}))))
    return root


@pytest.fixture
def sched_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``sched_plant(machines=3, machine_params=..., scheduler_params=..., seed=1, env=...)``: a started
    TestPlant (``env`` fills the manifest's ``${env:...}``, e.g. a ``command_secret``)."""
    plants: list[TestPlant] = []

    def make(*, seed: int = 1, env: dict[str, str] | None = None, **options: Any) -> TestPlant:
        plant = TestPlant(write_plant(tmp_path / f"plant{len(plants)}", **options), seed=seed, env=env)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()

