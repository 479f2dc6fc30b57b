"""forge_core.testing.backlog_on_subscribe: a broker's backlog delivered the moment a component subscribes,
while its start() still runs; a handler reading state start() makes later is caught there."""

from __future__ import annotations

from forge_core.testing import TestPlant, backlog_on_subscribe

PLUGIN = '''
from forge_core import Component, hookimpl


class Counter(Component):
    """Counts commands; LATE makes its state after subscribing (the mistake), else before."""

    LATE = {late}

    async def start(self):
        if not self.LATE:
            self.seen = []
        await self.ctx.subscribe("plant/{{instance}}/command".replace("{{instance}}", self.name), self.on_command,
                                 types=["test.command"])
        await self.ctx.subscribe("plant/other", self.on_other, types=["test.command"])
        if self.LATE:
            self.seen = []

    def on_command(self, envelope):
        self.seen.append(envelope.payload["action"])

    def on_other(self, envelope):
        pass


@hookimpl
def forge_register_components(registry):
    registry.add("test.counter", Counter)
'''

MANIFEST = """
version: 1
plant: {name: backlog}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  counter: {type: test.counter, replicas: 2}
storage: {migrate_on_start: false}
"""
COMMAND = {"target": "counter", "action": "waited"}


def test_the_backlog_reaches_each_replica_while_start_runs(plant_dir):
    with backlog_on_subscribe("counter", "on_command", "test.command", COMMAND) as delivered:
        plant = TestPlant(plant_dir(MANIFEST, plugin=PLUGIN.format(late=False))).start()
    try:
        assert delivered == ["counter-0", "counter-1"]
        assert [d.reason for d in plant.dead_letters] == []
        assert plant.component("counter-0").seen == ["waited"] and plant.component("counter-1").seen == ["waited"]
    finally:
        plant.stop()


def test_state_made_after_the_subscription_is_caught(plant_dir):
    with backlog_on_subscribe("counter", "on_command", "test.command", COMMAND):
        plant = TestPlant(plant_dir(MANIFEST, plugin=PLUGIN.format(late=True))).start()
    try:
        assert [d.reason for d in plant.dead_letters] == ["handler_error", "handler_error"]
        assert "'Counter' object has no attribute 'seen'" in plant.dead_letters[0].detail
    finally:
        plant.stop()


def test_a_wildcard_subscription_needs_the_topic_named(plant_dir, caplog):
    """The component's start() fails with the reason (the supervisor logs the crash and restarts it)."""
    plugin = PLUGIN.format(late=False).replace('"plant/other"', '"plant/+/other"')
    with backlog_on_subscribe("counter", "on_other", "test.command", COMMAND):
        plant = TestPlant(plant_dir(MANIFEST, plugin=plugin)).start()
    plant.stop()
    assert "counter-0.on_other subscribes the pattern 'plant/+/other'; name the topic to publish on" in caplog.text


def test_the_subscribe_method_is_restored_after_the_block() -> None:
    from forge_core.components.context import ComponentContext

    before = ComponentContext.subscribe
    with backlog_on_subscribe("counter", "on_command", "test.command", COMMAND):
        assert ComponentContext.subscribe is not before
    assert ComponentContext.subscribe is before
