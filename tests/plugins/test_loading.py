"""Building the plugin manager: built-ins, entry-point plugins and the env switches, and an
entry point that fails to import named with the fix."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest

from forge_core import hookimpl
from forge_core.errors import DuplicateRegistration, PluginError
from forge_core.plugins import get_plugin_manager
from forge_core.transport.memory import MemoryTransport


def test_builtin_plugin_provides_core_features():
    plugins = get_plugin_manager(autoload=False)
    plugins.collect()
    core = plugins.infos["forge_core"]
    assert core.builtin and core.distribution == "forge-core"
    assert core.provides["transports"] == ["memory"]
    assert "forge.logger" in core.provides["components"]
    assert "forge.deadletter" in core.provides["schemas"]
    assert "forge_register_transports" in core.hooks(plugins.pm)


def test_duplicate_builtin_name_is_refused():
    class Shadow:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("memory", lambda n, s, c: MemoryTransport(n))

    with pytest.raises(DuplicateRegistration, match="first by plugin 'forge_core', again by plugin 'shadow'"):
        get_plugin_manager(autoload=False, extra=[("shadow", Shadow())]).collect()


@pytest.fixture
def fake_entry_points(monkeypatch, tmp_path):
    """Install entry points in group 'forge' pointing at modules written to tmp_path."""
    sys.path.insert(0, str(tmp_path))
    points: list[EntryPoint] = []

    def add(name: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        points.append(EntryPoint(name=name, value=module, group="forge"))

    monkeypatch.setattr("forge_core.plugins.loading.entry_points",
                        lambda group: [p for p in points if p.group == group])
    yield add
    sys.path.remove(str(tmp_path))
    for point in points:
        sys.modules.pop(point.value, None)


GOOD_PLUGIN = """
from forge_core import hookimpl

@hookimpl
def forge_register_schemas(registry):
    registry.add("acme.ping", {"type": "object"})
"""


def test_entry_point_plugins_load_and_can_be_disabled(fake_entry_points, monkeypatch):
    fake_entry_points("acme", "forge_test_acme", GOOD_PLUGIN)
    fake_entry_points("other", "forge_test_other", GOOD_PLUGIN.replace("acme.ping", "other.ping"))
    plugins = get_plugin_manager()
    plugins.collect()
    assert {"acme", "other"} <= set(plugins.infos)
    assert "acme.ping" in plugins.schemas

    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "acme")
    assert "acme" not in get_plugin_manager().infos
    monkeypatch.delenv("FORGE_DISABLE_PLUGINS")
    monkeypatch.setenv("FORGE_LOAD_PLUGINS", "other")
    assert external(get_plugin_manager()) == {"other"}
    monkeypatch.setenv("FORGE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert external(get_plugin_manager()) == set()


def external(plugins) -> set[str]:
    return {name for name, info in plugins.infos.items() if not info.builtin}


def test_broken_entry_point_says_what_and_how_to_skip(fake_entry_points):
    fake_entry_points("broken", "forge_test_broken", "import not_a_module_anywhere\n")
    with pytest.raises(PluginError) as caught:
        get_plugin_manager()
    message = str(caught.value)
    assert message.startswith("plugin 'broken': could not be imported from 'forge_test_broken'")
    assert "No module named 'not_a_module_anywhere'" in message
    assert "FORGE_DISABLE_PLUGINS=broken" in message
