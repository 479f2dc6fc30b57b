"""The message and tactic hooks: message-type inference, dead letters, heartbeat payloads, source
status, leadership and backpressure changes, each called with its parameters when it happens.

The meta-test in tests/test_hookspecs.py fails when a hook has no ``test_hook_<name>`` in tests/hooks/.
"""

from __future__ import annotations

import logging

from forge_core import hookimpl
from forge_core.plugins import get_plugin_manager
from forge_core.testing import TestPlant


def test_hook_forge_infer_message_type(plant_dir):
    class Plugin:
        @hookimpl
        def forge_infer_message_type(self, topic, payload):
            return "test.command" if topic == "plant/m1/command" else None

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])) as plant:
        plant.publish_raw("plant/m1/command", {"target": "m1", "action": "start"})
        plant.publish_raw("plant/m2/command", {"target": "m2", "action": "start"})
        assert plant.component("m1").commands == ["start"]
        assert plant.component("m2").commands == []
        assert [(d.reason, d.topic) for d in plant.dead_letters] == [("decode_error", "plant/m2/command")]


def test_hook_forge_message_dead_lettered(plant_dir, recorder):
    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("r", recorder)])) as plant:
        plant.publish("plant/m1/command", "test.command", {"target": "m1", "action": "explode"})
    letters = [value for name, value in recorder.calls if name == "forge_message_dead_lettered"]
    assert letters == ["handler_error"]


def test_hook_forge_message_dead_lettered_failure_is_logged_not_raised(plant_dir, caplog):
    class Broken:
        @hookimpl
        def forge_message_dead_lettered(self, letter):
            raise RuntimeError("sink down")

    caplog.set_level(logging.ERROR)
    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("broken", Broken())])) as plant:
        plant.publish_raw("plant/m1/command", b"{")
        assert plant.runtime.dead_letters.counts["decode_error"] == 1
    assert "plugin 'broken', hook 'forge_message_dead_lettered'" in caplog.text


HEARTBEAT_PLANT = """
version: 1
plant: {name: beats}
transports: {bus: {type: memory}}
components:
  m1: {type: forge.heartbeat, params: {interval: 1.0}}
  m2: {type: forge.heartbeat, params: {interval: 1.0}}
  monitor: {type: forge.heartbeat_monitor}
tactics:
  heartbeat: {interval: 1.0}
storage: {migrate_on_start: false}
"""


def test_hook_forge_heartbeat_payload(plant_dir):
    class Plugin:
        @hookimpl
        def forge_heartbeat_payload(self, component):
            return {"line": "north", "component_seen": component}

    class Later:
        @hookimpl
        def forge_heartbeat_payload(self, component):
            return {"line": "south"} if component == "m2" else None

    plugins = get_plugin_manager(autoload=False, extra=[("p", Plugin()), ("later", Later())])
    with TestPlant(plant_dir(HEARTBEAT_PLANT), plugins=plugins) as plant:
        plant.advance(1)
        beats = {e.source: e.payload for e in reversed(plant.sent(type="forge.heartbeat"))}  # first of each
    assert beats["m1"] == {"line": "north", "component_seen": "m1", "source": "m1", "seq": 1}
    assert beats["m2"]["line"] == "south", "a later plugin wins on a clash"


def test_hook_forge_source_status_changed(plant_dir):
    changes = []

    class Plugin:
        @hookimpl
        def forge_source_status_changed(self, change, monitor):
            changes.append((change.source, str(change.old) if change.old else None, str(change.new), monitor))

    plugins = get_plugin_manager(autoload=False, extra=[("p", Plugin())])
    with TestPlant(plant_dir(HEARTBEAT_PLANT), plugins=plugins) as plant:
        plant.advance(3)
        plant.transport("bus").faults.partition("m2")
        plant.advance(10)
    assert ("m1", None, "UP", "monitor") in changes and ("m2", None, "UP", "monitor") in changes
    assert [c for c in changes if c[0] == "m2"][-1][2] == "DOWN"
    assert all(c[2] != "DOWN" for c in changes if c[0] == "m1")


def test_hook_forge_leadership_changed(plant_dir):
    events = []

    class Plugin:
        @hookimpl
        def forge_leadership_changed(self, lease, holder, epoch, leading):
            events.append((lease, holder, epoch, leading))

    leader_plugin = MACHINE_LEADER_PLUGIN
    manifest = """
    version: 1
    plant: {name: leaders}
    local_plugins: [machines.py]
    transports: {bus: {type: memory}}
    components:
      a: {type: test.leader}
      b: {type: test.leader}
    storage: {migrate_on_start: false}
    """
    plugins = get_plugin_manager(autoload=False, extra=[("p", Plugin())])
    with TestPlant(plant_dir(manifest, plugin=leader_plugin), plugins=plugins) as plant:
        plant.advance(2)
        first = events[0]
        assert first[2] == 1 and first[3] is True
    # on stop the leader releases: a deposition with the same epoch is reported
    assert (first[0], first[1], 1, False) in events


def test_hook_forge_backpressure_changed(plant_dir):
    switches = []

    class Plugin:
        @hookimpl
        def forge_backpressure_changed(self, component, old_interval, new_interval, depth):
            switches.append((component, old_interval, new_interval, depth))

    manifest = """
    version: 1
    plant: {name: pressure}
    local_plugins: [machines.py]
    transports: {bus: {type: memory}}
    components:
      sampler: {type: test.sampler}
    tactics:
      backpressure: {high: 10, low: 5, fast_interval: 0.25, slow_interval: 2.0, settle: 5.0}
    storage: {migrate_on_start: false}
    """
    plugins = get_plugin_manager(autoload=False, extra=[("p", Plugin())])
    with TestPlant(plant_dir(manifest, plugin=MACHINE_LEADER_PLUGIN), plugins=plugins) as plant:
        sampler = plant.component("sampler")
        sampler.depth = 11
        plant.advance(1)
        sampler.depth = 4
        plant.advance(4)
        assert len(switches) == 1, "not back to fast before the settling time"
        plant.advance(4)
    assert switches == [("sampler", 0.25, 2.0, 11), ("sampler", 2.0, 0.25, 4)]


MACHINE_LEADER_PLUGIN = '''
from forge_core import Component, hookimpl


class Leader(Component):
    async def start(self):
        self.elector = self.ctx.elector("line")


class Sampler(Component):
    async def start(self):
        self.depth = 0
        self.controller = self.ctx.backpressure()
        self.ctx.every(0.25, self.sample)

    def sample(self):
        self.controller.update(self.depth)


@hookimpl
def forge_register_components(registry):
    registry.add("test.leader", Leader)
    registry.add("test.sampler", Sampler)
'''
