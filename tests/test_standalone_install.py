"""Each domain plugin is complete on its own: forge-core and one plugin, installed non-editable in a
fresh virtualenv (dependencies from the package index, no examples, no other plugin), run a small
plant that uses the plugin's components with validation on, and messages of the plugin's own
types flow (their schemas come with the plugin, nothing else registers them).

Slow (a virtualenv and a pip install per plugin; pip's cache makes the second run quicker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTHER_DISTRIBUTIONS = {"forge-mqtt", "forge-kafka", "forge-b2mml", "forge-sched", "forge-mms", "forge-example-pasta"}

MACHINES = '''
"""Cutting machines that beat and obey the blade scheduler's commands (plain JSON bodies)."""
from forge_core import Component, Settings, hookimpl, subscribe


class MachineParams(Settings):
    heartbeat_interval: float = 1.0
    swap_time: float = 2.0


class Machine(Component):
    Params = MachineParams

    async def start(self):
        self.blade = None
        self.ctx.every(self.params.heartbeat_interval, self.beat, initial_delay=0.1 * self.ctx.replica)

    async def beat(self):
        body = {"title": "heartbeat", "machineId": self.ctx.replica}
        if self.blade is not None:
            body["bladeType"] = self.blade
        await self.ctx.publish("heartbeats", "sched.machine_heartbeat", body, key=str(self.ctx.replica))

    @subscribe("sched/assign_blade", types=["sched.assign_blade"], shared=False, fenced="scheduler")
    async def on_assign(self, envelope):
        if envelope.payload["machineId"] == self.ctx.replica:
            self.blade = envelope.payload["bladeType"]

    @subscribe("sched/swap_blade", types=["sched.swap_blade"], shared=False, fenced="scheduler")
    async def on_swap(self, envelope):
        if envelope.payload["machineId"] != self.ctx.replica:
            return
        await self.ctx.clock.sleep(self.params.swap_time)
        self.blade = envelope.payload["bladeType"]
        await self.ctx.publish("sched/blade_swapped", "sched.blade_swapped",
                               {"title": "BladeSwapped", "machineId": self.ctx.replica, "bladeType": self.blade})


class Storage(Component):
    """Storage far off target every minute: the scheduler must react (fresh amount or a swap)."""

    async def start(self):
        self.ctx.every(60.0, self.alert, initial_delay=30.0)

    async def alert(self):
        await self.ctx.publish("storage/alert", "sched.storage_alert",
                               {"title": "StorageAlert", "aFresh": 10.0, "aDry": 50.0, "bFresh": 10.0, "bDry": 50.0})

    @subscribe("sched/change_fresh_amount", types=["sched.change_fresh_amount"], fenced="scheduler")
    async def on_change(self, envelope):
        await self.ctx.publish("sched/fresh_amount_changed", "sched.fresh_amount_changed",
                               {"title": "FreshAmountChanged", "freshAmount": 4 + envelope.payload["change"]})


@hookimpl
def forge_register_components(registry):
    registry.add("line.machine", Machine)
    registry.add("line.storage", Storage)
'''

SCHED_PLANT = """
version: 1
plant: {name: line}
plugins: [sched]
local_plugins: [line.py]
transports: {bus: {type: memory}}
default_transport: bus
bindings:
  - {topic: heartbeats, type_field: title, type_map: {heartbeat: sched.machine_heartbeat}, key_field: machineId}
components:
  machine: {type: line.machine, replicas: 3}
  storage: {type: line.storage}
  scheduler: {type: sched.blade_scheduler, replicas: 2, params: {targets: {fresh: 50.0}}}
tactics:
  leader: {use: memory, ttl: 5.0, renew_every: 3.0, retry_every: 1.0}
  state: {use: memory}
storage: {url: "sqlite:///{plant_dir}/line.db", migrate_on_start: false}
"""

STOCK = '''
"""Stock levels that drift out of the monitor's band and back (plain JSON bodies)."""
from forge_core import Component, hookimpl


class Stock(Component):
    async def start(self):
        self.step = 0
        self.ctx.every(5.0, self.levels)

    async def levels(self):
        self.step += 1
        a_fresh = 50.0 + 40.0 * ((self.step // 6) % 2) - self.step % 6   # 44..50, then 84..90 (out of band)
        await self.ctx.publish("storage/levels", "mms.storage_levels",
                               {"title": "StorageLevels", "aFresh": a_fresh, "aDry": 50.0, "bFresh": 50.0,
                                "bDry": 50.0})


@hookimpl
def forge_register_components(registry):
    registry.add("store.stock", Stock)
'''

MMS_PLANT = """
version: 1
plant: {name: store}
plugins: [mms]
local_plugins: [store.py]
transports: {bus: {type: memory}}
default_transport: bus
components:
  stock: {type: store.stock}
  storage_monitor: {type: mms.storage_monitor, params: {interval: 10.0, low: 20.0, high: 80.0}}
storage: {url: "sqlite:///{plant_dir}/store.db", migrate_on_start: false}
"""


@dataclass(frozen=True)
class Case:
    distribution: str
    plugin_dir: str
    files: dict[str, str]
    #: message types of the plugin that must have flowed, and how many at least
    expected: dict[str, int]


CASES = {
    "sched": Case("forge-sched", "plugins/forge_sched", {"plant.yaml": SCHED_PLANT, "line.py": MACHINES},
                  {"sched.machine_heartbeat": 300, "sched.assign_blade": 3, "sched.storage_alert": 2,
                   "sched.change_fresh_amount": 1, "sched.fresh_amount_changed": 1}),
    "mms": Case("forge-mms", "plugins/forge_mms", {"plant.yaml": MMS_PLANT, "store.py": STOCK},
                {"mms.storage_levels": 20, "mms.storage_alert": 1}),
}


def run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def core_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """forge-core built once (non-editable) for every virtualenv of this module."""
    out = tmp_path_factory.mktemp("wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)], cwd=out, env=env)
    (wheel,) = out.glob("forge_core-*.whl")
    return wheel


@pytest.mark.slow
@pytest.mark.parametrize("plugin", sorted(CASES))
def test_plugin_alone_in_a_fresh_virtualenv_runs_a_plant_with_its_own_types(tmp_path: Path, core_wheel: Path,
                                                                           plugin: str) -> None:
    case = CASES[plugin]
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "PYTHONPATH", "VIRTUAL_ENV"))}
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    python, forge = venv / "bin" / "python", venv / "bin" / "forge"
    # non-editable, dependencies resolved by pip from the index: the plugin's wheel is built from its directory
    run([str(python), "-m", "pip", "install", "--quiet", str(core_wheel), str(REPO / case.plugin_dir)],
        cwd=tmp_path, env=env)

    listed = json.loads(run([str(python), "-m", "pip", "list", "--format", "json"], cwd=tmp_path, env=env).stdout)
    installed = {item["name"].lower().replace("_", "-") for item in listed}
    assert case.distribution in installed and "forge-core" in installed
    assert not (installed & OTHER_DISTRIBUTIONS) - {case.distribution}, installed
    located = run([str(python), "-c", f"import forge_{plugin}, forge_core; print(forge_{plugin}.__file__); "
                   "print(forge_core.__file__)"], cwd=tmp_path, env=env).stdout.split()
    assert all(str(venv) in path for path in located), f"not the installed copies: {located}"

    plant = tmp_path / "plant"
    plant.mkdir()
    for name, text in case.files.items():
        (plant / name).write_text(textwrap.dedent(text))
    run([str(forge), "validate", str(plant)], cwd=tmp_path, env=env)
    result = run([str(forge), "run", str(plant), "--simulate", "5m", "--seed", "1", "--json"], cwd=tmp_path, env=env)
    summary = json.loads(result.stdout)

    published = summary["published"]
    for type_, at_least in case.expected.items():
        assert published.get(type_, 0) >= at_least, (type_, published)
    assert not summary["dead_letters"], summary["dead_letters"]
    failed = [check for check in summary["checks"] if not check["passed"]]
    assert summary["checks"] and not failed, failed
