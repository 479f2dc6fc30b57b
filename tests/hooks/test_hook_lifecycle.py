"""The plant lifecycle hooks: each is called at its phase, in order, with its parameters, and its
result (checks, dashboard panels) is used; a failing plugin is named, never fatal.

The meta-test in tests/test_hookspecs.py fails when a hook has no ``test_hook_<name>`` in tests/hooks/.
"""

from __future__ import annotations

from forge_core import hookimpl
from forge_core.plugins import get_plugin_manager
from forge_core.testing import TestPlant


def test_hook_forge_transport_ready(plant_dir):
    seen = []

    class Plugin:
        @hookimpl
        def forge_transport_ready(self, name, transport):
            seen.append((name, transport.type_name, transport.health().connected))

    with TestPlant(plant_dir(), plugins=get_plugin_manager(autoload=False, extra=[("p", Plugin())])):
        pass
    assert seen == [("bus", "memory", True)]


def test_hooks_fire_in_lifecycle_order(plant_dir, recorder):
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


def test_hook_forge_component_crashed(plant_dir, recorder):
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
