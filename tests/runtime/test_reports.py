"""Components' reports and invariant checks reach the run summary and the exit code."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from forge_core.cli.main import build_app
from forge_core.testing import TestPlant

PLUGIN = '''
from forge_core import Component, hookimpl
from forge_core.checks import Check


class Counter(Component):
    async def start(self):
        self.ticks = 0
        self.ctx.every(1.0, self.tick)

    def tick(self):
        self.ticks += 1

    def report(self):
        return {"ticks": self.ticks}

    def checks(self):
        limit = self.params.get("limit", 100)
        return [Check("ticks within limit", self.ticks <= limit, f"{self.ticks} ticks, limit {limit}")]


@hookimpl
def forge_register_components(registry):
    registry.add("test.counter", Counter)
'''

MANIFEST = """
version: 1
plant: {name: reports}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  counter: {type: test.counter, params: {limit: LIMIT}}
storage: {migrate_on_start: false}
"""


def test_reports_and_checks_are_in_the_summary(plant_dir):
    with TestPlant(plant_dir(MANIFEST.replace("LIMIT", "100"), plugin=PLUGIN)) as plant:
        plant.advance(10)
    summary = plant.summary
    assert summary.reports == {"counter": {"ticks": 10}}
    (check,) = summary.checks
    assert (check.name, check.passed, check.component) == ("ticks within limit", True, "counter")
    assert summary.checks_passed


def test_a_failed_check_fails_forge_run(plant_dir):
    path = plant_dir(MANIFEST.replace("LIMIT", "5"), plugin=PLUGIN)
    result = CliRunner().invoke(build_app(), ["run", str(path), "--simulate", "1m", "--seed", "1", "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    ticks = summary["reports"]["counter"]["ticks"]
    assert 59 <= ticks <= 60  # a tick due at the very instant the run ends may or may not run
    assert summary["checks"] == [{"name": "ticks within limit", "passed": False, "detail": f"{ticks} ticks, limit 5",
                                  "component": "counter"}]
