"""The plugin manager: registration, duplicate names, unknown hooks, local plugin files and the
catalog of what the active plugins provide."""

from __future__ import annotations

import pytest

from forge_core import hookimpl
from forge_core.errors import DuplicateRegistration, PluginError
from forge_core.plugins import get_plugin_manager
from forge_core.transport.memory import MemoryTransport


def test_duplicate_transport_names_both_plugins():
    class A:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("wire", lambda n, s, c: MemoryTransport(n))

    class B:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("wire", lambda n, s, c: MemoryTransport(n))

    plugins = get_plugin_manager(autoload=False, extra=[("alpha", A()), ("beta", B())])
    with pytest.raises(DuplicateRegistration) as caught:
        plugins.collect()
    message = str(caught.value)
    assert "'alpha'" in message and "'beta'" in message and "forge_register_transports" in message


def test_misspelled_hook_fails_loudly_with_a_suggestion():
    class Typo:
        @hookimpl
        def forge_regster_components(self, registry):
            pass

    with pytest.raises(PluginError) as caught:
        get_plugin_manager(autoload=False, extra=[("typo", Typo())])
    assert str(caught.value) == (
        "plugin 'typo', hook 'forge_regster_components': implements unknown hook 'forge_regster_components'; "
        "did you mean 'forge_register_components'?"
    )


def test_same_plugin_name_twice_is_refused():
    class P:
        pass

    with pytest.raises(PluginError, match="already registered"):
        get_plugin_manager(autoload=False, extra=[("p", P()), ("p", P())])


def test_local_plugin_with_import_error_names_the_file(tmp_path):
    bad = tmp_path / "bad_components.py"
    bad.write_text("raise RuntimeError('half-written')\n")
    with pytest.raises(PluginError, match=r"local plugin .*bad_components.py failed to import: RuntimeError"):
        get_plugin_manager(autoload=False).load_local_plugin(bad)


def test_catalog_lists_what_plugins_provide():
    catalog = get_plugin_manager(autoload=False).catalog()
    assert "memory" in catalog.transports and catalog.transports["memory"]["additionalProperties"] is False
    assert "forge.logger" in catalog.components
    assert "forge_core" in catalog.plugins


def test_the_catalog_answers_from_the_plugins_active_when_it_was_built():
    """forge validate builds one catalog with every plugin active and checks each profile against
    it while activating the profile's plugins in turn: a schema computed late must not see those."""
    plugins = get_plugin_manager()
    plugins.activate(None)
    catalog = plugins.catalog()
    plugins.activate([])  # no scoped plugin: forge_sched's status_reporter.grpc leaves the registries
    plugins.collect()
    assert "grpc" not in plugins.tactics.implementations("status_reporter")
    assert "grpc" in catalog.tactics["status_reporter"]["properties"]["use"]["enum"]
