"""Plugin loading: built-ins, entry points, local files, env switches, and errors that name
the plugin, the hook and the fix."""

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


def test_duplicate_builtin_name_is_refused():
    class Shadow:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("memory", lambda n, s, c: MemoryTransport(n))

    with pytest.raises(DuplicateRegistration, match="first by plugin 'forge_core', again by plugin 'shadow'"):
        get_plugin_manager(autoload=False, extra=[("shadow", Shadow())]).collect()


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


def test_wrong_hook_signature_names_plugin_hook_and_fix():
    class Wrong:
        @hookimpl
        def forge_register_transports(self, registry, extra_arg):
            pass

    with pytest.raises(PluginError) as caught:
        get_plugin_manager(autoload=False, extra=[("wrong", Wrong())])
    message = str(caught.value)
    assert message.startswith("plugin 'wrong', hook 'forge_register_transports':")
    assert "extra_arg" in message and "use only the parameter names" in message


def test_exception_in_registration_names_plugin_and_hook():
    class Boom:
        @hookimpl
        def forge_register_components(self, registry):
            raise KeyError("oops")

    with pytest.raises(PluginError, match=r"plugin 'boom', hook 'forge_register_components': raised KeyError"):
        get_plugin_manager(autoload=False, extra=[("boom", Boom())]).collect()


def test_same_plugin_name_twice_is_refused():
    class P:
        pass

    with pytest.raises(PluginError, match="already registered"):
        get_plugin_manager(autoload=False, extra=[("p", P()), ("p", P())])


@pytest.fixture
def fake_entry_points(monkeypatch, tmp_path):
    """Install entry points in group 'forge' pointing at modules written to tmp_path."""
    sys.path.insert(0, str(tmp_path))
    points: list[EntryPoint] = []

    def add(name: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        points.append(EntryPoint(name=name, value=module, group="forge"))

    monkeypatch.setattr("forge_core.plugins.entry_points", lambda group: [p for p in points if p.group == group])
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


def test_trace_env_prints_pluggys_trace_and_the_plugin_per_implementation(monkeypatch, capsys):
    monkeypatch.setenv("FORGE_TRACE_PLUGINS", "1")
    get_plugin_manager(autoload=False).collect()
    lines = capsys.readouterr().err.splitlines()
    # pluggy's own tracing (pm.enable_tracing): the call with its kwargs, then its result
    call = lines.index("  forge_register_transports [hook]")
    assert lines[call + 1].startswith("      registry: <forge_core.registry.TransportRegistry")
    assert "  forge_register_transports -> forge_core [plugin]" in lines[call:]
    assert "  finish forge_register_transports --> [] [hook]" in lines[call:]


def test_no_trace_without_the_env(monkeypatch, capsys):
    monkeypatch.delenv("FORGE_TRACE_PLUGINS", raising=False)
    get_plugin_manager(autoload=False).collect()
    assert capsys.readouterr().err == ""


def test_wrapper_runs_around_a_registration_hook():
    seen = []

    class Acme:
        @hookimpl
        def forge_register_transports(self, registry):
            registry.add("wire", lambda n, s, c: MemoryTransport(n))

    class Around:
        @hookimpl(wrapper=True)
        def forge_register_transports(self, registry):
            seen.append(("before", sorted(registry.names())))
            result = yield
            seen.append(("after", sorted(registry.names())))
            return result

    plugins = get_plugin_manager(autoload=False, extra=[("acme", Acme()), ("around", Around())])
    plugins.collect()
    assert seen == [("before", []), ("after", ["memory", "wire"])]
    assert plugins.transports.get("wire").plugin == "acme", "current_plugin is still set per implementation"


def test_old_style_hookwrapper_runs_around_a_registration_hook_and_sees_the_error():
    seen = []

    class Boom:
        @hookimpl
        def forge_register_components(self, registry):
            raise KeyError("oops")

    class Around:
        @hookimpl(hookwrapper=True)
        def forge_register_components(self, registry):
            outcome = yield
            seen.append(type(outcome.exception).__name__)

    plugins = get_plugin_manager(autoload=False, extra=[("boom", Boom()), ("around", Around())])
    with pytest.raises(PluginError, match=r"^plugin 'boom', hook 'forge_register_components': raised KeyError"):
        plugins.collect()
    assert seen == ["PluginError"], "the wrapper saw the attributed error"


def test_wrapper_around_a_notification_hook(plant_dir):
    order = []

    class Listener:
        @hookimpl
        def forge_plant_stopped(self, summary):
            order.append("listener")

    class Timer:
        @hookimpl(wrapper=True)
        def forge_plant_stopped(self, summary):
            order.append("enter")
            yield
            order.append("exit")

    from forge_core.testing import TestPlant

    plugins = get_plugin_manager(autoload=False, extra=[("listener", Listener()), ("timer", Timer())])
    with TestPlant(plant_dir(), plugins=plugins):
        pass
    assert order == ["enter", "listener", "exit"]


def test_a_failing_notification_is_logged_with_its_plugin_and_the_next_plugin_still_runs(caplog):
    from forge_core.tactics.heartbeat_status import Status, StatusChange

    calls = []

    class Broken:
        @hookimpl
        def forge_source_status_changed(self, change, monitor):
            raise RuntimeError("pager down")

    class Fine:
        @hookimpl
        def forge_source_status_changed(self, change, monitor):
            calls.append(change.source)

    # Fine registered first, so pluggy calls Broken (last registered) before it
    plugins = get_plugin_manager(autoload=False, extra=[("fine", Fine()), ("broken", Broken())])
    plugins.source_status_changed(StatusChange("m1", None, Status.UP, 0.0, "discovered"), "monitor")
    assert calls == ["m1"]
    assert "plugin 'broken', hook 'forge_source_status_changed': raised RuntimeError: pager down" in caplog.text


def test_infer_message_type_error_names_the_plugin():
    class Guess:
        @hookimpl
        def forge_infer_message_type(self, topic, payload):
            raise ValueError("no idea")

    plugins = get_plugin_manager(autoload=False, extra=[("guess", Guess())])
    with pytest.raises(PluginError, match=r"^plugin 'guess', hook 'forge_infer_message_type': raised ValueError"):
        plugins.infer_message_type("a/b", {})


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
