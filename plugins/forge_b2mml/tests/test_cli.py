"""forge b2mml validate / convert / sample (the typer app the plugin registers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forge_b2mml.cli import app
from forge_b2mml.validate import validate

DATA = Path(__file__).parent / "data"
runner = CliRunner()


def test_validate_every_error_and_exit_1(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes((DATA / "production_schedule.xml").read_bytes().replace(b"PublishedDate", b"PublicationDate")
                    .replace(b"<Priority>1", b"<Priority>high"))
    result = runner.invoke(app, ["validate", str(DATA / "production_schedule.xml"), str(bad)])
    assert result.exit_code == 1
    assert "production_schedule.xml: valid B2MML V0600 ProductionSchedule" in result.output
    assert f"{bad}:7: /ProductionSchedule/PublicationDate: Unexpected child PublicationDate" in result.output
    assert f"{bad}:13: /ProductionSchedule/ProductionRequest/Priority" in result.output


def test_validate_all_samples_exit_0():
    result = runner.invoke(app, ["validate", *map(str, sorted(DATA.glob("*.xml"))), "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["valid"] for line in result.output.splitlines()] == [True] * 4


def test_convert_to_json_and_messages():
    result = runner.invoke(app, ["convert", str(DATA / "v0701_operations_schedule.xml"), "--to", "json"])
    out = json.loads(result.output)
    assert out["version"] == "V0701" and out["OperationsSchedule"]["OperationsRequest"]["ID"] == "PR-0001"
    result = runner.invoke(app, ["convert", str(DATA / "v0701_operations_schedule.xml"), "--to", "messages"])
    assert json.loads(result.output)[0]["type"] == "b2mml.production_request"


@pytest.mark.parametrize("version", ["V0600", "V0701"])
@pytest.mark.parametrize("kind", ["schedule", "performance"])
def test_sample_prints_a_valid_document(kind, version):
    result = runner.invoke(app, ["sample", kind, "--version", version])
    assert result.exit_code == 0
    assert validate(result.output.encode(), max_bytes=10**7) == []


def test_the_plugin_registers_the_command_and_schemas():
    from forge_core.plugin import CommandRegistry, SchemaRegistry

    from forge_b2mml import plugin

    commands, schemas = CommandRegistry(), SchemaRegistry()
    plugin.forge_register_commands(commands)
    plugin.forge_register_schemas(schemas)
    assert "b2mml" in commands
    assert {"b2mml.production_request", "b2mml.routing", "b2mml.material_definition", "b2mml.material_lot",
            "b2mml.order_completed", "b2mml.document", "b2mml.acknowledgement"} <= {s.type for s in schemas}
