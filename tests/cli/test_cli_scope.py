"""A plant sees only its plugins: an installed plugin's migrations, component types, schemas,
manifest sections and hooks apply to a plant only when its manifest lists it under ``plugins:``;
its CLI commands live under ``forge <plugin>``; ``forge plugins`` still lists everything."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forge_core.cli import build_app
from forge_core.errors import ManifestError
from forge_core.plant import check_plant, load_plant
from forge_core.plugins import get_plugin_manager

# An installed plugin as an example plant would be: its own migration, component, schema,
# settings section, CLI command and a hook that must not fire for other plants.
ACME = '''
from pathlib import Path

from forge_core import Component, hookimpl

VERSIONS = Path(__file__).parent / "acme_versions"
STARTED = []


class Press(Component):
    pass


@hookimpl
def forge_register_migrations(registry):
    registry.add("acmeplant", VERSIONS)


@hookimpl
def forge_register_components(registry):
    registry.add("acme.press", Press)


@hookimpl
def forge_register_schemas(registry):
    registry.add("acme.ping", {"type": "object"})


@hookimpl
def forge_register_manifest_sections(registry):
    registry.add("acmeplant", {"type": "object", "properties": {"speed": {"type": "integer"}},
                               "additionalProperties": False})


@hookimpl
def forge_register_commands(registry):
    def monitor():
        """Tail the acme plant."""
        print("acme monitor")

    registry.add("monitor", monitor)


@hookimpl
def forge_plant_started(runtime):
    STARTED.append(runtime.manifest.name)
'''

MIGRATION = (
    'revision = "acme_0001"\ndown_revision = None\nbranch_labels = ("acmeplant",)\ndepends_on = None\n'
    "from alembic import op\nimport sqlalchemy as sa\n\n"
    "def upgrade():\n    op.create_table('acme_batches', sa.Column('id', sa.Integer, primary_key=True))\n\n"
    "def downgrade():\n    op.drop_table('acme_batches')\n"
)

BAKERY = """\
version: 1
plant: {name: bakery}
PLUGINS
transports: {bus: {type: memory}}
components:
  logger: {type: forge.logger}
EXTRA
storage: {migrate_on_start: false}
"""


@pytest.fixture
def acme_installed(monkeypatch, tmp_path):
    """Install the ``acmeplant`` entry point next to whatever else is installed."""
    (tmp_path / "forge_test_acmeplant.py").write_text(textwrap.dedent(ACME))
    (tmp_path / "acme_versions").mkdir()
    (tmp_path / "acme_versions" / "0001_acme.py").write_text(MIGRATION)
    sys.path.insert(0, str(tmp_path))
    point = EntryPoint(name="acmeplant", value="forge_test_acmeplant", group="forge")
    monkeypatch.setenv("FORGE_LOAD_PLUGINS", "acmeplant")  # only it: other installed plugins may be mid-change
    monkeypatch.delenv("FORGE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setattr("forge_core.plugins.loading.entry_points",
                        lambda group: [point, *entry_points(group=group)] if group == "forge" else [])
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("forge_test_acmeplant", None)


def bakery(root: Path, *, plugins: str = "", extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "plant.yaml").write_text(BAKERY.replace("PLUGINS", plugins).replace("EXTRA", extra))
    return root


def invoke(*args: object):
    return CliRunner().invoke(build_app(), [str(a) for a in args], env={"COLUMNS": "200"})


def test_db_upgrade_applies_only_core_migrations_to_a_plant_that_does_not_list_the_plugin(acme_installed, tmp_path):
    plant = bakery(tmp_path / "bakery")
    result = invoke("db", "upgrade", plant, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["migrations"] == ["forge_core"]
    assert "acmeplant" not in json.loads(invoke("db", "current", plant, "--json").stdout)["current"]


def test_db_upgrade_applies_a_listed_plugins_migrations(acme_installed, tmp_path):
    plant = bakery(tmp_path / "acme", plugins="plugins: [acmeplant]")
    result = invoke("db", "upgrade", plant, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["migrations"]) == ["acmeplant", "forge_core"]


def test_an_unlisted_plugins_types_schemas_and_hooks_do_not_apply(acme_installed, tmp_path):
    from forge_core.testing import TestPlant

    plugins, _manifest = load_plant(bakery(tmp_path / "bakery"))
    assert "acme.press" not in plugins.components and "acme.ping" not in plugins.schemas
    assert "forge.logger" in plugins.components, "core's built-ins are always active"
    assert plugins.inactive == {"acmeplant"} and "acmeplant" in plugins.infos, "installed, not active"
    with TestPlant(bakery(tmp_path / "run")):
        pass
    with TestPlant(bakery(tmp_path / "listed", plugins="plugins: [acmeplant]")) as listed:
        assert "acme.ping" in listed.runtime.plugins.schemas
    assert sys.modules["forge_test_acmeplant"].STARTED == ["bakery"], "the hook fired for the listing plant only"


def test_a_plugin_may_be_listed_by_its_distribution_name(acme_installed, tmp_path):
    plugins, _ = load_plant(bakery(tmp_path / "b", plugins="plugins: [forge-acmeplant]"))
    assert "acme.press" in plugins.components


@pytest.mark.parametrize(("extra", "path", "what"), [
    ("  press: {type: acme.press}", "components.press.type", "component type 'acme.press'"),
    ("settings:\n  acmeplant: {speed: 3}", "settings.acmeplant", "settings section 'acmeplant'"),
])
def test_validate_names_the_plugin_to_add(acme_installed, tmp_path, extra, path, what):
    plant = bakery(tmp_path / "bakery", extra=extra)
    (problem,) = check_plant(plant)
    assert problem.path == path
    assert problem.message == (f"{what} is provided by plugin 'acmeplant', which is installed but not active for "
                               "this plant: a plant sees only the plugins it lists; add 'acmeplant' to `plugins:`")
    result = invoke("validate", plant)
    assert result.exit_code == 1 and "add 'acmeplant' to `plugins:`" in result.stdout
    with pytest.raises(ManifestError, match="add 'acmeplant'"):
        load_plant(plant)
    assert check_plant(bakery(tmp_path / "fixed", plugins="plugins: [acmeplant]", extra=extra)) == []


def test_a_profile_can_list_a_plugin(acme_installed, tmp_path):
    plant = bakery(tmp_path / "p", extra="profiles:\n  line: {plugins: [acmeplant]}")
    assert "acme.press" not in load_plant(plant)[0].components
    assert "acme.press" in load_plant(plant, profile="line")[0].components


def test_plugin_commands_are_under_the_plugin_name_and_forge_plugins_lists_everything(acme_installed):
    top = invoke("--help").stdout
    assert "Plugin commands" in top and "acmeplant" in top
    assert "monitor" not in top, "an installed plugin adds no bare top-level command"
    assert invoke("acmeplant", "monitor").stdout == "acme monitor\n"
    listed = {p["name"]: p for p in json.loads(invoke("plugins", "--json").stdout)}
    assert "acme.press" in listed["acmeplant"]["provides"]["components"]
    assert listed["acmeplant"]["provides"]["commands"] == ["monitor"]


def test_unknown_type_of_a_listed_plugin_that_is_not_installed_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    plant = bakery(tmp_path / "b", plugins="plugins: [oven]", extra="  baker: {type: oven.baker}")
    found = {p.path: p.message for p in check_plant(plant, plugins=get_plugin_manager())}
    assert found["plugins[0]"].endswith("plugin 'oven' is not installed; installed: forge_core, forge_core.heartbeat, "
                                        "forge_core.tactics; pip install forge-oven")
    assert "plugin 'oven' (listed under plugins:) would provide it but is not installed: pip install forge-oven" \
        in found["components.baker.type"]




def test_the_installed_pasta_example_does_not_leak_into_a_bakery(tmp_path, monkeypatch):
    if not any(ep.name == "pasta" for ep in entry_points(group="forge")):
        pytest.skip("the pasta example is not installed")
    monkeypatch.setenv("FORGE_LOAD_PLUGINS", "pasta,sched,mms")
    plant = bakery(tmp_path / "bakery")
    result = invoke("db", "upgrade", plant, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["migrations"] == ["forge_core"]
    assert "monitor" not in invoke("--help").stdout.replace("Plugin commands", "")
