"""Finding, loading and calling plugins: the plugin manager and its typed facade.

Core code never calls ``pm.hook.x(**kw)`` untyped: it calls a method of :class:`Plugins`
(:mod:`.manager`), one per hook, and that method calls ``pm.hook.<name>(...)``: pluggy's own call
loop, so ``wrapper=True`` and old-style ``hookwrapper=True`` implementations,
``tryfirst``/``trylast`` and pluggy's tracing all apply. So that an error still names the plugin
that raised it, every ordinary implementation's function is wrapped when its plugin is registered
(:func:`.guard.guard`). :func:`get_plugin_manager` (:mod:`.loading`) registers the built-ins and
the installed plugins.

Call order is pluggy's: the last registered plugin first. Built-ins mark their registration
hooks ``tryfirst`` so they register before any plugin, and a clash with a built-in name blames
the plugin.

Environment:
  ``FORGE_DISABLE_PLUGIN_AUTOLOAD=1``  load no entry-point plugins (built-ins still load)
  ``FORGE_DISABLE_PLUGINS=a,b``        skip these entry-point plugins
  ``FORGE_LOAD_PLUGINS=a,b``           load only these entry-point plugins
  ``FORGE_TRACE_PLUGINS=1``            pluggy's hook tracing on stderr (``pm.enable_tracing()``), plus
                                       one ``<hook> -> <plugin> [plugin]`` line per implementation
"""

from forge_core.plugins.loading import BUILTIN_PLUGINS, ENTRY_POINT_GROUP, get_plugin_manager
from forge_core.plugins.manager import PluginInfo, Plugins

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PluginInfo", "Plugins", "get_plugin_manager"]
