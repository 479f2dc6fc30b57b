"""``forge validate``: every problem at once with file:line, exit codes, what to pip install."""

from __future__ import annotations

import json
from pathlib import Path

BROKEN = """\
version: 1
plant:
  name: bakery
transports:
  bus:
    type: memory
components:
  oven:
    type: bakery.oven
    replicas: zero
    transport: mqtt
storage:
  migrate_on_start: true
  migrate_on_start: false
"""

UNKNOWN_PLUGIN = """\
version: 1
plant: {name: kafka_plant}
plugins: [kafka]
transports:
  bus: {type: memory}
"""


def test_broken_manifest_lists_every_problem_with_file_and_line(invoke, tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(BROKEN)
    result = invoke("validate", tmp_path)
    assert result.exit_code == 1
    file = tmp_path / "plant.yaml"
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(file))]
    assert len(lines) >= 4, result.stdout
    assert f"{file}:9 at components.oven.type: unknown component type 'bakery.oven'" in result.stdout
    assert f"{file}:10 at components.oven.replicas:" in result.stdout
    assert f"{file}:11 at components.oven.transport:" in result.stdout
    assert f"{file}:14 at storage.migrate_on_start: duplicate key" in result.stdout


def test_broken_manifest_as_json(invoke, tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(BROKEN)
    result = invoke("validate", tmp_path / "plant.yaml", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    by_path = {p["path"]: p for p in data["problems"]}
    assert by_path["components.oven.type"]["line"] == 9
    assert by_path["components.oven.type"]["file"].endswith("plant.yaml")


def test_unknown_plugin_says_what_to_install(invoke, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "kafka")  # as if forge-kafka were not installed
    (tmp_path / "plant.yaml").write_text(UNKNOWN_PLUGIN)
    result = invoke("validate", tmp_path)
    assert result.exit_code == 1
    assert "plugins[0]" in result.stdout and "pip install forge-kafka" in result.stdout


def test_running_a_broken_plant_prints_the_problems_not_a_traceback(invoke, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "kafka")
    (tmp_path / "plant.yaml").write_text(UNKNOWN_PLUGIN)
    result = invoke("run", tmp_path, "--simulate", "1s")
    assert result.exit_code == 1
    assert "pip install forge-kafka" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_no_manifest(invoke, tmp_path: Path) -> None:
    result = invoke("validate", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_validate_counts_components_and_instances_as_run_does(invoke) -> None:
    plant = Path(__file__).resolve().parents[2] / "examples" / "sensor_monitoring"
    result = invoke("validate", plant)
    assert result.exit_code == 0, result.output
    assert "  3 components (5 instances): sensors x3 (sensor_monitoring.sensors), processors " in result.stdout
    assert json.loads(invoke("validate", plant, "--json").stdout)["instances"] == 5
