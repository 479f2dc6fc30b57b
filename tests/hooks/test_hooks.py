"""One test per hook: each is called at its phase, with its parameters, and its result is used.

The meta-test in tests/test_hookspecs.py fails when a hook has no ``test_hook_<name>`` here.
"""

from __future__ import annotations

import logging

import pytest

from forge_core import hookimpl
from forge_core.errors import ManifestError, ManifestProblem, PluginError
from forge_core.plugin import DrillOptions, DrillReport, DrillScenario
from forge_core.plugins import get_plugin_manager
from forge_core.registry import CommandRegistry, DrillRegistry
from forge_core.storage.migrations import MigrationRegistry
from forge_core.testing import TestPlant
from forge_core.transport.memory import MemoryTransport


class Recorder:
    """A plugin that records every hook call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def forge_transport_ready(self, name, transport):
        self.calls.append(("forge_transport_ready", name))

    @hookimpl
    def forge_plant_started(self, runtime):
        self.calls.append(("forge_plant_started", sorted(runtime.supervisors)))

    @hookimpl
    def forge_plant_stopping(self, runtime):
        self.calls.append(("forge_plant_stopping", runtime.manifest.name))

    @hookimpl
    def forge_plant_checks(self, summary):
        self.calls.append(("forge_plant_checks", sorted(summary.components)))

    @hookimpl
    def forge_plant_stopped(self, summary):
        self.calls.append(("forge_plant_stopped", summary.stop_reason))

    @hookimpl
    def forge_message_dead_lettered(self, letter):
        self.calls.append(("forge_message_dead_lettered", letter.reason))

    @hookimpl
    def forge_component_crashed(self, name, error, restarts, gave_up):
        self.calls.append(("forge_component_crashed", (name, str(error), restarts, gave_up)))


def test_hook_forge_register_transports():
    class Plugin:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("loopback", lambda name, settings, ctx: MemoryTransport(name), description="x")

    plugins = get_plugin_manager(autoload=False, extra=[("loop", Plugin())])
    plugins.collect()
    assert plugins.transports.get("loopback").plugin == "loop"
    assert plugins.infos["loop"].provides["transports"] == ["loopback"]


def test_hook_forge_register_components(plant_dir):
    plugins = get_plugin_manager(autoload=False)
    with TestPlant(plant_dir(), plugins=plugins) as plant:
        plant.advance(1.0)
        assert plugins.components.get("test.machine").plugin == "local:machines"
        assert plugins.components.get("test.machine").schema["additionalProperties"] is False
        assert plant.sent(type="test.reading", source="m1")


def test_hook_forge_register_schemas():
    class Plugin:
        @hookimpl
        def forge_register_schemas(self, registry):
            registry.add("acme.ping", {"type": "object", "required": ["n"]})

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    plugins.collect()
    assert plugins.schemas.errors("acme.ping", {"n": 1}) == []
    assert plugins.schemas.errors("acme.ping", {})[0]["message"] == "'n' is a required property"
    assert plugins.schemas.get("acme.ping").plugin == "acme"


def test_hook_forge_register_tactics():
    def factory(**settings):
        return ("detector", settings)

    class Plugin:
        @hookimpl
        def forge_register_tactics(self, registry):
            registry.add("detector.always_up", factory, settings_schema={"type": "object"})

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    catalog = plugins.catalog()
    assert catalog.tactics["detector.always_up"] == {"type": "object"}
    assert plugins.tactics.get("detector.always_up").value(threshold=3) == ("detector", {"threshold": 3})


def test_hook_forge_register_manifest_sections(plant_dir):
    class Plugin:
        @hookimpl
        def forge_register_manifest_sections(self, registry):
            registry.add("acme", {"type": "object", "properties": {"port": {"type": "integer"}},
                                  "additionalProperties": False})

    manifest = plant_dir().joinpath("plant.yaml")
    manifest.write_text(manifest.read_text() + "settings:\n  acme: {port: high}\n")
    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    with pytest.raises(ManifestError) as caught:
        TestPlant(manifest.parent, plugins=plugins)
    text = str(caught.value)
    assert "settings.acme.port" in text and "'high'" in text


def test_manifest_section_declared_as_a_settings_model(plant_dir):
    from forge_core import Settings

    class AcmeSettings(Settings):
        port: int = 1883
        host: str = "localhost"

    class Plugin:
        @hookimpl
        def forge_register_manifest_sections(self, registry):
            registry.add("acme", AcmeSettings)

    manifest = plant_dir().joinpath("plant.yaml")
    manifest.write_text(manifest.read_text() + "settings:\n  acme: {prot: 1}\n")
    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    with pytest.raises(ManifestError) as caught:
        TestPlant(manifest.parent, plugins=plugins)
    assert "settings.acme.prot" in str(caught.value) and "'port'" in str(caught.value)  # the typo, and the fix
    entry = plugins.sections.get("acme")
    assert entry.build_settings({"port": 8883}) == AcmeSettings(port=8883, host="localhost")


def test_hook_forge_register_migrations(tmp_path):
    versions = tmp_path / "acme_versions"
    versions.mkdir()
    (versions / "0001_acme.py").write_text(
        'revision = "acme_0001"\ndown_revision = None\nbranch_labels = ("acme",)\ndepends_on = None\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        "def upgrade():\n    op.create_table('acme_things', sa.Column('id', sa.Integer, primary_key=True))\n\n"
        "def downgrade():\n    op.drop_table('acme_things')\n"
    )

    class Plugin:
        @hookimpl
        def forge_register_migrations(self, registry):
            registry.add("acme", versions)

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    registry = plugins.collect_migrations(MigrationRegistry(include_core=False))
    assert sorted(entry.name for entry in registry) == ["acme", "forge_core"]
    assert {entry.name: entry.plugin for entry in registry}["acme"] == "acme"
    from sqlalchemy import inspect

    from forge_core.storage import create_engine_from_url, upgrade

    engine = create_engine_from_url(f"sqlite:///{tmp_path}/db.sqlite")
    upgrade(engine, registry)
    assert {"acme_things", "forge_dead_letters"} <= set(inspect(engine).get_table_names())


def test_hook_forge_register_commands():
    def hello() -> None:
        """Say hello."""

    class Plugin:
        @hookimpl
        def forge_register_commands(self, registry: CommandRegistry):
            registry.add("hello", hello, help="greet")

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    commands = plugins.collect_commands()
    assert commands.get("hello").value is hello and commands.get("hello").plugin == "acme"


def test_hook_forge_register_drills(plant_dir):
    class Outage(DrillScenario):
        name = "outage"
        description = "the line stops"

        def run(self, plant_dir, options: DrillOptions) -> DrillReport:
            return DrillReport(self.name, plant_dir.name)

    class Plugin:
        @hookimpl
        def forge_register_drills(self, registry: DrillRegistry):
            registry.add(Outage())

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Plugin())])
    drills = plugins.collect_drills()
    assert drills.names() == ["outage"] and drills.get("outage").plugin == "acme"
    assert drills.get("outage").description == "the line stops"
    assert drills.get("outage").value.run(plant_dir(), DrillOptions()).scenario == "outage"


def test_hook_forge_validate_manifest(plant_dir):
    class Plugin:
        @hookimpl
        def forge_validate_manifest(self, manifest):
            if len(manifest.components) < 3:
                return [ManifestProblem("components", "a line needs three machines", str(manifest.path),
                                        manifest.line_of(("components",)))]
            return None

    plugins = get_plugin_manager(autoload=False, extra=[("rules", Plugin())])
    with pytest.raises(ManifestError) as caught:
        TestPlant(plant_dir(), plugins=plugins)
    assert "a line needs three machines" in str(caught.value)
    assert caught.value.problems[0].line is not None


def test_hook_forge_validate_manifest_wrong_return_names_plugin(plant_dir):
    class Plugin:
        @hookimpl
        def forge_validate_manifest(self, manifest):
            return "not a list"

    plugins = get_plugin_manager(autoload=False, extra=[("sloppy", Plugin())])
    with pytest.raises(PluginError, match="plugin 'sloppy', hook 'forge_validate_manifest'"):
        TestPlant(plant_dir(), plugins=plugins)


def test_hook_forge_transport_ready(plant_dir):
    seen = []

    class Plugin:
        @hookimpl
        def forge_transport_ready(self, name, transport):
            seen.append((name, transport.type_name, transport.health().connected))

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])):
        pass
    assert seen == [("bus", "memory", True)]


def test_hooks_fire_in_lifecycle_order(plant_dir):
    recorder = Recorder()
    plugins = get_plugin_manager(autoload=False, extra=[("recorder", recorder)])
    plant = TestPlant(plant_dir(), plugins=plugins).start()
    plant.advance(1)
    plant.runtime.request_stop("test over")
    plant.stop()
    names = [name for name, _ in recorder.calls]
    assert names == ["forge_transport_ready", "forge_plant_started", "forge_plant_stopping", "forge_plant_checks",
                     "forge_plant_stopped"]
    assert recorder.calls[0] == ("forge_transport_ready", "bus")
    assert recorder.calls[1] == ("forge_plant_started", ["m1", "m2"])
    assert recorder.calls[3] == ("forge_plant_checks", ["m1", "m2"])
    assert recorder.calls[4] == ("forge_plant_stopped", "test over")


def test_hook_forge_plant_checks(plant_dir):
    class Counting:
        @hookimpl
        def forge_plant_checks(self, summary):
            from forge_core import Check

            sent = sum(r.get("sent", 0) for r in summary.reports.values())
            return [Check("plant: every instance reported", set(summary.components) == {"m1", "m2"},
                          ", ".join(sorted(summary.components))),
                    Check("plant: a failing verdict", False, f"{sent} counted")]

    class Broken:
        @hookimpl
        def forge_plant_checks(self, summary):
            raise KeyError("reports")

    plugins = get_plugin_manager(autoload=False, extra=[("counting", Counting()), ("broken", Broken())])
    with TestPlant(plant_dir(), plugins=plugins) as plant:
        plant.advance(1)
    checks = {c.name: c for c in plant.summary.checks if c.component == "plant"}
    assert checks["plant: every instance reported"].passed
    assert checks["plant: every instance reported"].detail == "m1, m2"
    assert not checks["plant: a failing verdict"].passed and not plant.summary.checks_passed
    broken = checks["plant checks of broken"]  # the raising plugin is named; the other one still ran
    assert not broken.passed and "KeyError" in broken.detail


def test_hook_forge_dashboard_panel(plant_dir):
    from forge_core.dashboard import Panel, PanelTable, instances_of, status_of

    class Line:
        @hookimpl
        def forge_dashboard_panel(self, runtime):
            rows = [[name, status_of(state)] for name, state, _ in instances_of(runtime, "test.machine")]
            return Panel("line", {"machines": len(rows)}, [PanelTable("machines", ["machine", "status"], rows)])

    class NotAPanel:
        @hookimpl
        def forge_dashboard_panel(self, runtime):
            return {"title": "a dict"}

    class Quiet:
        @hookimpl
        def forge_dashboard_panel(self, runtime):
            return None  # nothing to show for this plant

    plugins = get_plugin_manager(autoload=False, extra=[("line", Line()), ("dicts", NotAPanel()), ("quiet", Quiet())])
    with TestPlant(plant_dir(), plugins=plugins) as plant:
        plant.advance(1)
        plant.runtime.supervisors["m2"].state = "killed"  # as Supervisor.kill leaves it
        panels = plugins.dashboard_panels(plant.runtime)
    assert [p.title for p in panels] == ["line", "dicts: panel failed"]  # registration order; None left out
    assert panels[0].as_dict()["tables"][0]["rows"] == [["m1", "UP"], ["m2", "DOWN"]]
    assert "expected a forge_core.dashboard.Panel" in panels[1].fields["error"]


def test_hook_forge_plant_started(plant_dir):
    seen = []

    class Plugin:
        @hookimpl
        def forge_plant_started(self, runtime):
            seen.append({name: s.state for name, s in runtime.supervisors.items()})

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])):
        pass
    assert seen == [{"m1": "running", "m2": "running"}]


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


def test_hook_forge_message_dead_lettered(plant_dir):
    recorder = Recorder()
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


def test_hook_forge_component_crashed(plant_dir):
    recorder = Recorder()
    manifest = """
    version: 1
    plant: {name: crashy}
    local_plugins: [machines.py]
    schemas: [schemas]
    transports: {bus: {type: memory}}
    components:
      m1: {type: test.machine, params: {interval: 1.0, crash_after: 2.0}}
    runtime: {restart: {initial_backoff: 1.0, max_backoff: 4.0, max_restarts: 2, window: 100.0}}
    storage: {migrate_on_start: false}
    """
    with TestPlant(plant_dir(manifest), plugins=get_plugin_manager(autoload=False, extra=[("r", recorder)])) as p:
        p.advance(30)
        assert p.state("m1") == "failed"
    crashes = [value for name, value in recorder.calls if name == "forge_component_crashed"]
    assert crashes == [("m1", "boom", 1, False), ("m1", "boom", 2, False), ("m1", "boom", 3, True)]


def test_hook_forge_plant_stopping(plant_dir):
    published_at_stop = []

    class Plugin:
        @hookimpl
        def forge_plant_stopping(self, runtime):
            # transports are still up: the plugin can still see them connected
            published_at_stop.append(runtime.transports["bus"].health().connected)

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])):
        pass
    assert published_at_stop == [True]


def test_hook_forge_plant_stopped(plant_dir):
    summaries = []

    class Plugin:
        @hookimpl
        def forge_plant_stopped(self, summary):
            summaries.append(summary)

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])) as plant:
        plant.advance(4)
    (summary,) = summaries
    assert summary.published["test.reading"] == 4 + 2
    assert summary.components == {"m1": "stopped", "m2": "stopped"}




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
