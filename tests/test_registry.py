"""Registries (src/forge_core/registry.py): what a plugin registers by ``"module:attribute"`` path is
imported on first use, an object registered directly still works, and every failure names the
plugin, the hook, the type and the path."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from forge_core import hookimpl
from forge_core.builtin.logger import MessageLogger, MessageLoggerParams
from forge_core.errors import PluginError, UnknownRegistration
from forge_core.plugins import get_plugin_manager
from forge_core.registry import ComponentRegistry, ManifestSectionRegistry, TacticRegistry, TransportRegistry


@pytest.fixture
def lazy_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh module ``acme_lazy_<n>`` on sys.path with a component; not imported yet."""
    name = f"acme_lazy_{abs(hash(str(tmp_path))) & 0xFFFFFF:06x}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''
        from forge_core import Component, Settings


        class PressParams(Settings):
            force: float = 1200.0


        class Press(Component):
            """Presses parts."""

            Params = PressParams


        class NotSettings:
            pass


        class BadParams(Component):
            Params = NotSettings
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def registry(plugin: str = "acme") -> ComponentRegistry:
    components = ComponentRegistry()
    components.current_plugin = plugin
    return components


def test_a_path_is_imported_on_first_use_and_gives_what_the_class_gives(lazy_module: str) -> None:
    components = registry()
    entry = components.add("acme.press", f"{lazy_module}:Press")
    assert lazy_module not in sys.modules and not entry.loaded  # registering imports nothing
    assert entry.target == f"{lazy_module}:Press"
    assert entry.schema is not None and entry.schema["properties"]["force"]["default"] == 1200.0
    assert entry.loaded and lazy_module in sys.modules
    assert entry.value is sys.modules[lazy_module].Press
    assert entry.settings is sys.modules[lazy_module].PressParams
    assert entry.description == "Presses parts."
    assert entry.build_settings({"force": 10}).force == 10


def test_a_class_registered_directly_still_works() -> None:
    entry = registry().add("acme.logger", MessageLogger)
    assert entry.loaded and entry.target is None
    assert entry.value is MessageLogger and entry.settings is MessageLoggerParams
    assert entry.description.startswith("Print matching messages")


def test_a_string_that_is_not_a_path_is_refused_at_registration_naming_plugin_and_type() -> None:
    with pytest.raises(PluginError, match=r"plugin 'acme', hook 'forge_register_components': component type "
                                          r"'acme.press': 'acme.components.Press' is not an import path; write "
                                          r"'package.module:attribute'"):
        registry().add("acme.press", "acme.components.Press")
    with pytest.raises(PluginError, match=r"settings of transport type 'wire': 'acme settings' is not"):
        transports = TransportRegistry()
        transports.current_plugin = "acme"
        transports.add("wire", "acme.transport:factory", settings="acme settings")


def test_a_module_that_does_not_import_names_plugin_type_and_path() -> None:
    entry = registry().add("acme.press", "forge_acme_not_installed.components:Press")
    with pytest.raises(PluginError) as caught:
        _ = entry.value
    assert str(caught.value) == (
        "plugin 'acme', hook 'forge_register_components': component type 'acme.press': cannot import "
        "'forge_acme_not_installed.components:Press': ModuleNotFoundError: No module named "
        "'forge_acme_not_installed'; reinstall the plugin's distribution (with its dependencies) or fix the "
        "path it registered")
    with pytest.raises(PluginError, match=r"component type 'acme\.press'"):
        _ = entry.schema  # the manifest validator's way in fails the same way


def test_a_missing_attribute_names_plugin_type_and_path(lazy_module: str) -> None:
    entry = registry().add("acme.press", f"{lazy_module}:Prss")
    with pytest.raises(PluginError, match=rf"plugin 'acme', hook 'forge_register_components': component type "
                                          rf"'acme.press': '{lazy_module}:Prss': module '{lazy_module}' has no "
                                          rf"attribute 'Prss'"):
        _ = entry.value


def test_params_that_are_not_settings_name_plugin_and_type(lazy_module: str) -> None:
    entry = registry().add("acme.bad", f"{lazy_module}:BadParams")
    with pytest.raises(PluginError, match=r"plugin 'acme', .*component type 'acme.bad': Params must be a "
                                          r"forge_core.Settings subclass"):
        _ = entry.settings


def test_lazy_transport_settings_tactic_and_manifest_section(lazy_module: str) -> None:
    transports = TransportRegistry()
    entry = transports.add("wire", "forge_core.builtin.core:_memory_factory",
                           settings="forge_core.transport.memory:MemorySettings")
    assert not entry.loaded and type(entry.build_settings({})).__name__ == "MemorySettings"
    assert callable(entry.value)
    tactics = TacticRegistry()
    tactics.add_kind("quota", settings=f"{lazy_module}:PressParams", default_use="fixed")
    assert tactics.split("quota", {"force": 3.0, "extra": 1}) == ("fixed", {"force": 3.0}, {"extra": 1})
    sections = ManifestSectionRegistry()
    section = sections.add("acme", f"{lazy_module}:PressParams")
    assert not section.loaded
    assert section.value["properties"]["force"]["default"] == 1200.0
    assert section.build_settings({"force": 2}).force == 2


def test_an_unknown_type_names_the_type_and_the_plugin_it_points_at() -> None:
    components = registry()
    components.add("acme.logger", MessageLogger)
    with pytest.raises(UnknownRegistration) as caught:
        components.get("bakery.oven")
    assert isinstance(caught.value, KeyError)  # what a registry lookup always raised
    assert str(caught.value) == ("unknown component type 'bakery.oven': no active plugin registers it (a plugin "
                                 "named 'bakery' would, if installed and listed under the plant's `plugins:`); "
                                 "registered: acme.logger")


def test_load_all_reports_every_broken_entry_at_once(lazy_module: str) -> None:
    components = registry()
    components.add("acme.press", f"{lazy_module}:Press")
    components.add("acme.gone", "forge_acme_not_installed:Gone")
    components.add("acme.typo", f"{lazy_module}:Pres")
    errors = components.load_all()
    assert [e.detail.split(":")[0] for e in errors] == ["component type 'acme.gone'", "component type 'acme.typo'"]
    assert all(e.plugin == "acme" for e in errors)


def test_a_plugin_hook_registering_paths_loads_nothing_until_used(lazy_module: str) -> None:
    class Acme:
        @hookimpl
        def forge_register_components(self, registry):
            registry.add("acme.press", f"{lazy_module}:Press")

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Acme())])
    plugins.collect()
    assert plugins.infos["acme"].provides["components"] == ["acme.press"]
    assert lazy_module not in sys.modules
    assert plugins.catalog().components["acme.press"]["properties"]["force"]["default"] == 1200.0
    assert plugins.components.get("acme.press").plugin == "acme"


def test_every_installed_plugin_registers_paths_that_import() -> None:
    """Each plugin.py in this repository names its components, transports, tactics and commands by
    path: a typo there would only show when a plant used the type, so resolve them all here."""
    plugins = get_plugin_manager()
    plugins.collect()
    errors = [*plugins.components.load_all(), *plugins.transports.load_all(), *plugins.tactics.load_all(),
              *plugins.sections.load_all(), *plugins.collect_commands().load_all()]
    assert [str(e) for e in errors] == []
    assert len(plugins.components) > 20  # every example and plugin, not only the built-ins
