"""How pluggy calls one plugin's implementation of a hook, so that every failure names the plugin.

:func:`guard` wraps an ordinary implementation when its plugin is registered: it sets
``registry.current_plugin`` for registration hooks, turns an exception into a
:class:`~forge_core.errors.PluginError` naming plugin and hook (or logs it and carries on for the
notification hooks in :data:`SWALLOWING_HOOKS`) and checks the result's type
(:data:`RESULT_CHECKS`). Wrapper implementations are generators and are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pluggy

from forge_core import hookspecs
from forge_core.errors import ManifestProblem, PluginError

log = logging.getLogger("forge.plugins")

#: Notification hooks: an exception is logged (naming the plugin) and the next plugin still runs.
SWALLOWING_HOOKS = frozenset({
    "forge_message_dead_lettered", "forge_component_crashed", "forge_heartbeat_payload",
    "forge_source_status_changed", "forge_leadership_changed", "forge_backpressure_changed",
    "forge_plant_stopping", "forge_plant_stopped",
})


def _check_problems(result: object) -> str | None:
    if result is None or (isinstance(result, list) and all(isinstance(p, ManifestProblem) for p in result)):
        return None
    return f"must return a list of ManifestProblem or None, got {type(result).__name__}"


def _check_dict(result: object) -> str | None:
    return None if result is None or isinstance(result, dict) else \
        f"must return a dict or None, got {type(result).__name__}"


def _check_checks(result: object) -> str | None:
    from forge_core.checks import Check

    if result is None or (isinstance(result, list) and all(isinstance(c, Check) for c in result)):
        return None
    return f"must return a list of forge_core.Check or None, got {type(result).__name__}"


def _check_panel(result: object) -> str | None:
    from forge_core.dashboard.panels import check_panel

    return check_panel(result)


#: Result checks per hook: a message when an implementation returned the wrong type.
RESULT_CHECKS: dict[str, Callable[[object], str | None]] = {
    "forge_validate_manifest": _check_problems,
    "forge_heartbeat_payload": _check_dict,
    "forge_plant_checks": _check_checks,
    "forge_dashboard_panel": _check_panel,
}


def guard(hook_name: str, plugin_name: str, argnames: tuple[str, ...], function: Callable[..., Any],
          trace: Callable[..., None] | None = None) -> Callable[..., Any]:
    """``function`` (one plugin's implementation of ``hook_name``) as pluggy will call it:
    positional arguments in ``argnames`` order, failures attributed to ``plugin_name``;
    ``trace`` (pluggy's tagged tracer) gets one ``<hook> -> <plugin>`` line per call."""
    swallow = hook_name in SWALLOWING_HOOKS
    check = RESULT_CHECKS.get(hook_name)
    registry_at = argnames.index("registry") if hook_name.startswith("forge_register_") and \
        "registry" in argnames else None

    def guarded(*args: Any) -> Any:
        registry = args[registry_at] if registry_at is not None else None
        if trace is not None:
            trace(hook_name, "->", plugin_name)
        if registry is not None:
            registry.current_plugin = plugin_name
        try:
            result = function(*args)
            problem = check(result) if check is not None else None
            if problem is not None:
                raise PluginError(problem, plugin=plugin_name, hook=hook_name)
            return result
        except Exception as exc:
            if isinstance(exc, PluginError) and exc.plugin:
                error = exc  # already attributed (a registry's duplicate, a nested hook call)
            else:
                error = PluginError(f"raised {type(exc).__name__}: {exc}", plugin=plugin_name, hook=hook_name)
            if not swallow:
                if error is exc:
                    raise
                raise error from exc
            log.error("%s", error, exc_info=exc)
            return None
        finally:
            if registry is not None:
                registry.current_plugin = None

    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


def hook_in(message: str) -> str | None:
    """The hook a pluggy validation message is about, if it names one."""
    for name in hookspecs.hook_names():
        if name in message:
            return name
    return None


def explain_validation(exc: pluggy.PluginValidationError) -> str:
    """pluggy's validation error on one line, with the fix for a wrong parameter name."""
    lines = str(exc).splitlines()
    detail = "; ".join(line.strip() for line in lines[1:]) or lines[0]
    if "Argument(s)" in detail:
        return f"{detail} — use only the parameter names of the hookspec (see docs/hooks.md)"
    return detail
