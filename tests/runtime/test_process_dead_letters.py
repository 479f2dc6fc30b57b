"""The multi-process runner's dead letters: every child's accounting is summed in the parent's summary."""

from __future__ import annotations

import asyncio

from forge_core.plant import load_plant
from forge_core.runtime.processes import ProcessRunner
from tests.runtime.process_helpers import MANIFEST, PLUGIN, until, up

LETTERS_PLUGIN = PLUGIN.replace("@hookimpl\ndef forge_register_components(registry):", '''
class Letterer(Component):
    """Puts ``count`` dead letters on its process's channel at start, from one topic each."""

    params_schema = {"type": "object", "properties": {"count": {"type": "integer"}}}

    async def start(self):
        from forge_core import DeadLetter

        for i in range(self.params["count"]):
            self.ctx.bus.dead_letters.put(DeadLetter("refused", "test letter", f"junk/{self.name}/{i}", "bus",
                                                     self.ctx.clock.time(), [], self.name, None, "x"))


@hookimpl
def forge_register_components(registry):
    registry.add("test.letterer", Letterer)''', 1)


def test_every_child_s_dead_letters_are_summed_in_the_parent_summary(plant_dir):
    """Issue 11 §3: the dead-letter accounting (recorded, dropped, quarantined, ...) of every process
    is in the merged summary, with a check that each letter is accounted for; before, only the
    reasons' counts were merged and the accounting of the children was lost."""
    manifest = MANIFEST.replace("m2: {type: test.machine, params: {interval: 0.2}}",
                                "letters: {type: test.letterer, params: {count: 7}, replicas: 2}")
    path = plant_dir(manifest, plugin=LETTERS_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: all(map(up, runner.children.values())), timeout=60)
        await asyncio.sleep(0.5)
        return await runner.stop()

    summary = asyncio.run(scenario())
    assert summary.dead_letters == {"refused": 14}
    merged = summary.extra["dead_letters"]
    assert merged["total"] == 14 and merged["by_process"]["letters-0"] == 7 and merged["by_process"]["letters-1"] == 7
    assert merged["quarantined"] + merged["offered"] == 14 and merged["published"] == 14, merged  # no SQL here
    assert merged["lives_without_summary"] == 0
    check = next(c for c in summary.checks if c.name == "every dead letter accounted for")
    assert check.passed, check
