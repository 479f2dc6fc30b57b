"""``forge drill``: scenarios from a plant's plugin (``forge_register_drills``), the report as a table
or JSON, exit code 1 on a failed figure, and clear errors for unknown drills and plants without any."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forge_core import hookimpl
from forge_core.cli import build_app
from forge_core.errors import ForgeError, PluginError
from forge_core.plugin import DrillFigure, DrillOptions, DrillRegistry, DrillReport, DrillScenario, get_plugin_manager

#: The plant's local plugin: two scenarios, one that passes and one with a lost reading.
DRILLS_PLUGIN = '''
from __future__ import annotations

import json
from pathlib import Path

from forge_core import hookimpl
from forge_core.plugin import DrillFigure, DrillReport, DrillScenario


class Blackout(DrillScenario):
    name = "blackout"
    description = "the oven's power fails and comes back"
    phases = {"warmup": 1.0, "fault": 2.0}
    profile = "embedded"

    def run(self, plant_dir, options):
        (plant_dir / "seen.json").write_text(json.dumps({
            "profile": options.profile, "fault": options.phase(self, "fault"),
            "warmup": options.phase(self, "warmup"), "work_dir": str(options.work_dir)}))
        options.log("blackout: power off")
        report = DrillReport(self.name, plant_dir.name)
        report.timeline.append((0.0, "power off"))
        report.add(DrillFigure.equal("loaves lost", 0, 0))
        report.add(DrillFigure.at_most("time to recover", 1.5, 4.0, "s", note="first loaf after the fault"))
        report.add(DrillFigure.info("peak queue", 17, "loaves"))
        return report


class Flood(DrillScenario):
    name = "flood"
    description = "water in the bakery: a loaf is lost"
    phases = {"fault": 1.0}

    def run(self, plant_dir, options):
        report = DrillReport(self.name, plant_dir.name)
        report.add(DrillFigure.equal("loaves lost", 1, 0))
        return report


@hookimpl
def forge_register_drills(registry):
    registry.add(Blackout())
    registry.add(Flood())
'''


@pytest.fixture
def drill_plant(bakery: Path, tmp_path: Path) -> Path:
    """The scaffolded bakery plus a local plugin with two drills."""
    plant = tmp_path / "bakery"
    plant.mkdir()
    for item in bakery.iterdir():
        if item.is_dir():
            shutil.copytree(item, plant / item.name)
        else:
            (plant / item.name).write_text(item.read_text())
    (plant / "drills.py").write_text(textwrap.dedent(DRILLS_PLUGIN))
    manifest = (plant / "plant.yaml").read_text().replace(
        "local_plugins: [components/bakery_machine.py]", "local_plugins: [components/bakery_machine.py, drills.py]")
    (plant / "plant.yaml").write_text(manifest)
    return plant


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_list_names_each_drill_with_its_phases(drill_plant: Path, runner: CliRunner) -> None:
    app = build_app()
    listed = runner.invoke(app, ["drill", str(drill_plant), "--list"])
    assert listed.exit_code == 0, listed.output
    assert "blackout" in listed.stdout and "the oven's power fails" in listed.stdout and "fault=2" in listed.stdout
    as_json = json.loads(runner.invoke(app, ["drill", str(drill_plant), "--list", "--json"]).stdout)
    assert [d["name"] for d in as_json] == ["blackout", "flood"]
    assert as_json[0]["phases"] == {"warmup": 1.0, "fault": 2.0} and as_json[0]["profile"] == "embedded"
    assert as_json[0]["plugin"] == "local:drills"


def test_a_passing_drill_prints_its_table_and_exits_0(drill_plant: Path, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(build_app(), ["drill", str(drill_plant), "blackout", "--seconds", "5",
                                         "--seconds", "warmup=0.5", "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    for text in ("drill blackout", "passed", "loaves lost", "time to recover", "<= 4 s", "1.5 s", "peak queue",
                 "17 loaves", "power off", "first loaf after the fault"):
        assert text in result.stdout, text
    assert "blackout: power off" in result.stderr  # progress goes to stderr
    seen = json.loads((drill_plant / "seen.json").read_text())
    assert seen == {"profile": None, "fault": 5.0, "warmup": 0.5, "work_dir": str((tmp_path / "w").resolve())}


def test_a_failed_figure_exits_1_and_json_keeps_every_figure(drill_plant: Path, runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["drill", str(drill_plant), "flood", "--json"])
    assert result.exit_code == 1
    report = DrillReport.from_dict(json.loads(result.stdout))
    assert not report.passed and report.figure("loaves lost").ok is False
    assert [f.name for f in report.failed()] == ["loaves lost"]
    table = runner.invoke(build_app(), ["drill", str(drill_plant), "flood"])
    assert table.exit_code == 1 and "FAILED" in table.stdout


def test_unknown_drill_phase_and_missing_scenario_are_named(drill_plant: Path, runner: CliRunner) -> None:
    app = build_app()
    unknown = runner.invoke(app, ["drill", str(drill_plant), "earthquake"])
    assert unknown.exit_code == 1
    assert "has no drill 'earthquake'; its drills: blackout, flood" in unknown.stderr
    phase = runner.invoke(app, ["drill", str(drill_plant), "blackout", "--seconds", "cooldown=3"])
    assert phase.exit_code == 1 and "has no phase 'cooldown'; its phases: warmup=1, fault=2" in phase.stderr
    bad = runner.invoke(app, ["drill", str(drill_plant), "blackout", "--seconds", "fault=soon"])
    assert bad.exit_code == 1 and "'soon' is not a number of seconds" in bad.stderr
    none = runner.invoke(app, ["drill", str(drill_plant)])
    assert none.exit_code == 1 and "name a drill of plant 'bakery' (blackout, flood)" in none.stderr


def test_a_plant_without_drills_says_so(bakery: Path, runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["drill", str(bakery), "blackout"])
    assert result.exit_code == 1
    assert "plant 'bakery'" in result.stderr and "has no failure drills" in result.stderr
    assert "forge_register_drills" in result.stderr


def test_the_registry_refuses_what_is_not_a_scenario_and_names_twice() -> None:
    class Quake(DrillScenario):
        name = "quake"
        description = "the floor shakes"

        def run(self, plant_dir: Path, options: DrillOptions) -> DrillReport:
            return DrillReport(self.name, plant_dir.name)

    class BadName(Quake):
        name = "Big Quake"

    def plugin_adding(*items: object) -> object:
        class Plugin:
            @hookimpl
            def forge_register_drills(self, registry: DrillRegistry) -> None:
                for item in items:
                    registry.add(item)  # type: ignore[arg-type]

        return Plugin()

    ok = get_plugin_manager(autoload=False, extra=[("quakes", plugin_adding(Quake()))])
    assert ok.collect_drills().get("quake").plugin == "quakes"
    for items, message in (((Quake(), Quake()), "registered twice"), (("quake",), "DrillScenario instance, got str"),
                           ((BadName(),), "lowercase words joined by '-'")):
        plugins = get_plugin_manager(autoload=False, extra=[("quakes", plugin_adding(*items))])
        with pytest.raises(PluginError, match=message) as caught:
            plugins.collect_drills()
        assert caught.value.plugin == "quakes"


def test_figures_judge_themselves() -> None:
    assert DrillFigure.at_most("lag drain", None, 10, "s").ok is False  # not measured is not a pass
    assert DrillFigure.at_least("readings stored", 10, 10).ok is True
    assert DrillFigure.info("peak lag", 300).ok is None
    report = DrillReport("x", "p", [DrillFigure.equal("lost", 0, 0)], error="the cluster did not start")
    assert not report.passed and "error: the cluster did not start" in report.table()
    assert DrillReport.from_dict(report.to_dict()) == report
    with pytest.raises(ForgeError, match="has no phase 'fault'"):
        DrillOptions().phase(type("S", (DrillScenario,), {"name": "s", "run": lambda *a: None})(), "fault")
