"""Shared fixtures for forge-core's own tests."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_core.builtin.logger import MessageLogger

MACHINE_PLUGIN = '''
from forge_core import Component, hookimpl, subscribe


class Machine(Component):
    """A test machine: publishes a reading every interval, counts commands."""

    params_schema = {
        "type": "object",
        "properties": {"interval": {"type": "number", "exclusiveMinimum": 0},
                       "crash_after": {"type": ["number", "null"]}},
        "additionalProperties": False,
    }

    async def start(self):
        self.commands = []
        self.ctx.every(self.params.get("interval", 1.0), self.tick)
        crash_after = self.params.get("crash_after")
        if crash_after is not None:
            self.ctx.spawn(self.crash(crash_after))

    async def crash(self, after):
        await self.ctx.clock.sleep(after)
        raise RuntimeError("boom")

    async def tick(self):
        await self.ctx.publish(f"plant/{self.name}/reading", "test.reading",
                               {"machine": self.name, "value": round(self.ctx.random.random(), 6)})

    @subscribe("plant/+/command", types=["test.command"])
    async def on_command(self, envelope):
        if envelope.payload["target"] != self.name:
            return
        if envelope.payload["action"] == "explode":
            raise ValueError("cannot do that")
        self.commands.append(envelope.payload["action"])


@hookimpl
def forge_register_components(registry):
    registry.add("test.machine", Machine)
'''

READING = '''{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
 "required": ["machine", "value"], "additionalProperties": false,
 "properties": {"machine": {"type": "string"}, "value": {"type": "number", "minimum": 0, "maximum": 1}}}'''

COMMAND = '''{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
 "required": ["target", "action"],
 "properties": {"target": {"type": "string"}, "action": {"type": "string"}}}'''


def write_plant(root: Path, manifest: str, *, plugin: str = MACHINE_PLUGIN) -> Path:
    (root / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "schemas" / "test.reading.json").write_text(READING)
    (root / "schemas" / "test.command.json").write_text(COMMAND)
    (root / "machines.py").write_text(plugin)
    (root / "plant.yaml").write_text(textwrap.dedent(manifest))
    return root


BASIC_MANIFEST = """
version: 1
plant: {name: testplant}
local_plugins: [machines.py]
schemas: [schemas]
transports:
  bus: {type: memory}
components:
  m1: {type: test.machine, params: {interval: 1.0}}
  m2: {type: test.machine, params: {interval: 2.0}, group: line2}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


@pytest.fixture
def basic_manifest() -> str:
    """Two test machines on one memory transport (m2 in group line2)."""
    return BASIC_MANIFEST


@pytest.fixture
def plant_dir(tmp_path: Path) -> Callable[..., Path]:
    """``plant_dir(manifest=BASIC_MANIFEST, plugin=MACHINE_PLUGIN)`` writes a plant and returns its dir."""

    def make(manifest: str = BASIC_MANIFEST, *, plugin: str = MACHINE_PLUGIN, name: str = "plant") -> Path:
        return write_plant(tmp_path / name, manifest, plugin=plugin)

    return make


@pytest.fixture(autouse=True)
def _quiet_logger(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr(MessageLogger, "stream", stream)
    return stream
