"""Components publishing and taking batches, and subscribers sharing a named consumer group."""

from __future__ import annotations

import pytest

from forge_core.testing import TestPlant

BATCH_PLUGIN = '''
from forge_core import Component, hookimpl, subscribe


class Gateway(Component):
    """Publishes ten readings at once every second."""

    async def start(self):
        self.round = 0
        self.ctx.every(1.0, self.tick)

    async def tick(self):
        self.round += 1
        await self.ctx.publish_batch("readings", "test.order", [{"n": self.round * 100 + i} for i in range(10)],
                                     keys=[f"s{i}" for i in range(10)])


class Collector(Component):
    async def start(self):
        self.batches = []

    @subscribe("readings", batch=True)
    def on_readings(self, envelopes):
        self.batches.append([(e.source, e.key, e.payload["n"]) for e in envelopes])


@hookimpl
def forge_register_components(registry):
    registry.add("test.gateway", Gateway)
    registry.add("test.collector", Collector)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''


BATCH_MANIFEST = """
version: 1
plant: {name: batches}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  gateway: {type: test.gateway}
  collector: {type: test.collector}
storage: {migrate_on_start: false}
"""


def test_components_publish_batches_and_take_them_in_lists(plant_dir):
    with TestPlant(plant_dir(BATCH_MANIFEST, plugin=BATCH_PLUGIN), seed=1) as plant:
        plant.advance(3.5)
        batches = plant.component("collector").batches
    got = [item for batch in batches for item in batch]
    assert batches and all(isinstance(batch, list) for batch in batches)
    assert [n for _, _, n in got] == [r * 100 + i for r in (1, 2, 3) for i in range(10)]
    assert {source for source, _, _ in got} == {"gateway"} and got[3][1] == "s3"


def test_a_batch_handler_cannot_be_fenced():
    from forge_core.components import subscribe

    with pytest.raises(ValueError, match="batch handler cannot be fenced"):
        subscribe("line/command", batch=True, fenced="line")


# -- ctx.subscribe(group=...): a named consumer group instead of the component's own (issue 14) ------------

GROUP_PLUGIN = BATCH_PLUGIN.replace('''    @subscribe("readings", batch=True)
    def on_readings(self, envelopes):
        self.batches.append([(e.source, e.key, e.payload["n"]) for e in envelopes])
''', '''        group = self.params.get("group")
        await self.ctx.subscribe("readings", self.on_readings, batch=True, **({"group": group} if group else {}))

    def on_readings(self, envelopes):
        self.batches.append([e.payload["n"] for e in envelopes])
''')

GROUP_MANIFEST = """
version: 1
plant: {name: groups}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  gateway: {type: test.gateway}
  left: {type: test.collector, params: {group: processors}}
  right: {type: test.collector, params: {group: processors}}
  audit: {type: test.collector}
storage: {migrate_on_start: false}
"""


def test_subscribers_naming_one_group_share_the_messages_across_components(plant_dir):
    with TestPlant(plant_dir(GROUP_MANIFEST, plugin=GROUP_PLUGIN), seed=1) as plant:
        plant.advance(2.5)
        left, right, audit = ([n for batch in plant.component(name).batches for n in batch]
                              for name in ("left", "right", "audit"))
    assert left and right, "both members of group 'processors' got some"
    assert sorted(left + right) == sorted(audit) == [r * 100 + i for r in (1, 2) for i in range(10)]


def test_a_group_is_shared_and_named():
    import asyncio

    from forge_core.components import ComponentContext

    ctx = ComponentContext(name="p", component="p", replica=0, replicas=1, params=None, bus=None,  # type: ignore[arg-type]
                           clock=None, transport=None, seed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="with group 'g' is shared"):
        asyncio.run(ctx.subscribe("readings", lambda e: None, group="g", shared=False))
    with pytest.raises(ValueError, match="group name is empty"):
        asyncio.run(ctx.subscribe("readings", lambda e: None, group=" "))
