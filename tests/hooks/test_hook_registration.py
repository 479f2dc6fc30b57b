"""The registration and validation hooks: each registry hook's entries are collected under the
plugin's name and used; forge_validate_manifest's problems stop the plant.

The meta-test in tests/test_hookspecs.py fails when a hook has no ``test_hook_<name>`` in tests/hooks/.
"""

from __future__ import annotations

import pytest

from forge_core import hookimpl
from forge_core.errors import ManifestError, ManifestProblem, PluginError
from forge_core.plugin import DrillOptions, DrillReport, DrillScenario
from forge_core.plugins import get_plugin_manager
from forge_core.registry import CommandRegistry, DrillRegistry
from forge_core.storage.migrations import MigrationRegistry
from forge_core.testing import TestPlant
from forge_core.transport.memory import MemoryTransport


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
