"""A small pasta test plant: fake cutting machines + the blade scheduler, on the memory bus.

The protocol (topics, bindings, schemas) is the pasta plant's own: ``schemas:`` points at
``examples/pasta_plant/schemas`` of this repository.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forge_core.testing import TestPlant

REPO = Path(__file__).resolve().parents[3]
PASTA_SCHEMAS = REPO / "examples" / "pasta_plant" / "schemas"

MACHINE_PLUGIN = '''
from forge_core import Component, hookimpl, subscribe


class FakeCuttingMachine(Component):
    """Beats like a cutting machine (bladeType only while WORKING); obeys fenced assign/swap."""

    async def start(self):
        self.machine_id = self.params.get("first_id", 0) + self.ctx.replica
        self.blade = None
        self.swapping = False
        self.commands = []          # (type, bladeType, epoch) of every command applied
        self.ctx.every(self.params.get("heartbeat_interval", 1.0), self.beat,
                       initial_delay=0.1 * (self.ctx.replica % 10))

    async def beat(self):
        body = {"title": "heartbeat", "machineId": self.machine_id}
        if self.blade is not None and not self.swapping:
            body["bladeType"] = self.blade
        await self.ctx.publish("heartbeats", "pasta.heartbeat", body, key=str(self.machine_id))

    @subscribe("productionPlan/assignBlade", shared=False, fenced="scheduler")
    async def on_assign(self, envelope):
        if envelope.payload["machineId"] != self.machine_id:
            return
        self.commands.append(("assign", envelope.payload["bladeType"], envelope.payload.get("epoch")))
        self.blade = envelope.payload["bladeType"]

    @subscribe("productionPlan/swapBlade", shared=False, fenced="scheduler")
    async def on_swap(self, envelope):
        if envelope.payload["machineId"] != self.machine_id:
            return
        self.commands.append(("swap", envelope.payload["bladeType"], envelope.payload.get("epoch")))
        self.swapping = True
        await self.ctx.clock.sleep(self.params.get("swap_time", 2.0))
        self.blade, self.swapping = envelope.payload["bladeType"], False
        await self.ctx.publish("productionPlan/bladeSwapped", "pasta.blade_swapped",
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
schemas: ["{schemas}"]
transports: {{bus: {{type: memory}}}}
default_transport: bus
bindings:
  - {{topic: heartbeats, type_field: title, type_map: {{heartbeat: pasta.heartbeat}}, source_field: machineId,
     key_field: machineId}}
  - {{topic: productionPlan/assignBlade, type: pasta.assign_blade, key_field: machineId}}
  - {{topic: productionPlan/swapBlade, type: pasta.swap_blade, key_field: machineId}}
  - {{topic: productionPlan/bladeSwapped, type: pasta.blade_swapped, source_field: machineId, key_field: machineId}}
  - {{topic: sorting/changeFreshAmount, type: pasta.change_fresh_amount}}
  - {{topic: sorting/freshAmountChanged, type: pasta.fresh_amount_changed}}
  - {{topic: storage/alert, type: pasta.storage_alert}}
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
        schemas=PASTA_SCHEMAS.as_posix(), machines=machines,
        machine_params=json.dumps(machine_params or {"heartbeat_interval": 1.0}),
        scheduler_params=json.dumps(scheduler_params or {}))))
    return root


@pytest.fixture
def sched_plant(tmp_path: Path) -> Iterator[Callable[..., TestPlant]]:
    """``sched_plant(machines=3, machine_params=..., scheduler_params=..., seed=1)``: a started TestPlant."""
    plants: list[TestPlant] = []

    def make(*, seed: int = 1, **options: Any) -> TestPlant:
        plant = TestPlant(write_plant(tmp_path / f"plant{len(plants)}", **options), seed=seed)
        plants.append(plant)
        return plant.start()

    yield make
    for plant in plants:
        plant.stop()

