"""How each implementation is called: errors name the plugin and the hook, notification hooks log
and carry on, wrappers still run around the guarded implementations, tracing names the plugin."""

from __future__ import annotations

import pytest

from forge_core import hookimpl
from forge_core.errors import PluginError
from forge_core.plugins import get_plugin_manager
from forge_core.transport.memory import MemoryTransport


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
