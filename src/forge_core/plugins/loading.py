"""Building the plugin manager: the built-ins, then the installed (entry-point) plugins.

Environment:
  ``FORGE_DISABLE_PLUGIN_AUTOLOAD=1``  load no entry-point plugins (built-ins still load)
  ``FORGE_DISABLE_PLUGINS=a,b``        skip these entry-point plugins
  ``FORGE_LOAD_PLUGINS=a,b``           load only these entry-point plugins
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from forge_core import hookspecs
from forge_core.errors import PluginError
from forge_core.plugins.manager import PluginInfo, Plugins

ENTRY_POINT_GROUP = "forge"
#: Core features are plugins too, registered through the same hooks (name -> module).
#: Each module holds hooks only and registers what it provides by "module:attribute" path.
BUILTIN_PLUGINS = {"forge_core": "forge_core.builtin.core", "forge_core.tactics": "forge_core.builtin.tactics_plugin",
                   "forge_core.heartbeat": "forge_core.builtin.heartbeat_plugin"}


def get_plugin_manager(
    *,
    autoload: bool | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build the plugin manager: built-ins, then entry-point plugins, then ``extra``.

    Built inside a function (not at import time) so tests build as many as they like.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    for name, module_name in BUILTIN_PLUGINS.items():
        module = importlib.import_module(module_name)
        plugins.register(module, name, info=PluginInfo(name=name, module=module_name, version=_core_version(),
                                                       distribution="forge-core", builtin=True))
    if autoload is None:
        autoload = os.environ.get("FORGE_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    if autoload:
        _load_entry_points(plugins)
    for name, plugin in extra:
        plugins.register(plugin, name)
    plugins.check_pending()
    return plugins


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _core_version() -> str:
    from forge_core import __version__

    return __version__


def _load_entry_points(plugins: Plugins) -> None:
    disabled = _env_list("FORGE_DISABLE_PLUGINS") or set()
    only = _env_list("FORGE_LOAD_PLUGINS")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in disabled or (only is not None and ep.name not in only):
            continue
        if plugins.pm.has_plugin(ep.name):
            continue  # the same distribution installed twice on the path
        dist = ep.dist
        try:
            module: ModuleType = ep.load()
        except Exception as exc:
            raise PluginError(
                f"could not be imported from {ep.value!r}: {type(exc).__name__}: {exc}; reinstall "
                f"{dist.name if dist else 'its package'} or skip it with FORGE_DISABLE_PLUGINS={ep.name}",
                plugin=ep.name,
            ) from exc
        plugins.register(module, ep.name, info=PluginInfo(
            name=ep.name, module=ep.value, version=dist.version if dist else "",
            distribution=dist.name if dist else "", scoped=True,
        ))
