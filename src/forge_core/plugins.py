"""Finding, loading and calling plugins: the plugin manager and its typed facade.

Core code never calls ``pm.hook.x(**kw)`` untyped: it calls a method of :class:`Plugins`, one
per hook. Registration and notification hooks are called one implementation at a time so an
error names the plugin that raised it.

Environment:
  ``FORGE_DISABLE_PLUGIN_AUTOLOAD=1``  load no entry-point plugins (built-ins still load)
  ``FORGE_DISABLE_PLUGINS=a,b``        skip these entry-point plugins
  ``FORGE_LOAD_PLUGINS=a,b``           load only these entry-point plugins
  ``FORGE_TRACE_PLUGINS=1``            log every hook call to stderr
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from forge_core import hookspecs
from forge_core.errors import ManifestProblem, PluginError
from forge_core.messages.schemas import SchemaRegistry
from forge_core.registry import (
    CommandRegistry,
    ComponentRegistry,
    ManifestSectionRegistry,
    NamedRegistry,
    TacticRegistry,
    TransportRegistry,
)

if TYPE_CHECKING:
    from forge_core.manifest import Catalog, Manifest
    from forge_core.messages.deadletter import DeadLetter
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary
    from forge_core.storage.migrations import MigrationRegistry
    from forge_core.tactics.heartbeat_status import StatusChange
    from forge_core.transport.base import Transport

log = logging.getLogger("forge.plugins")

ENTRY_POINT_GROUP = "forge"
#: Core features are plugins too, registered through the same hooks (name -> module).
BUILTIN_PLUGINS = {"forge_core": "forge_core.builtin.core", "forge_core.tactics": "forge_core.builtin.tactics",
                   "forge_core.heartbeat": "forge_core.builtin.heartbeat"}


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str = ""
    distribution: str = ""
    builtin: bool = False
    local_path: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)

    def hooks(self, pm: pluggy.PluginManager) -> list[str]:
        plugin = pm.get_plugin(self.name)
        if plugin is None:
            return []
        return sorted(c.name for c in pm.get_hookcallers(plugin) or [])


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class Plugins:
    """The plugin manager with one typed method per hook, and the registries it fills."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.infos: dict[str, PluginInfo] = {}
        self.transports = TransportRegistry()
        self.components = ComponentRegistry()
        self.schemas = SchemaRegistry()
        self.tactics = TacticRegistry()
        self.sections = ManifestSectionRegistry()
        self.commands = CommandRegistry()
        self._collected = False
        self._commands_collected = False
        self._tracing = os.environ.get("FORGE_TRACE_PLUGINS", "") not in ("", "0")

    # -- loading ---------------------------------------------------------------------------
    def register(self, plugin: object, name: str, *, info: PluginInfo | None = None) -> None:
        """Register ``plugin`` (a module or object with hookimpls) under ``name``."""
        if self.pm.has_plugin(name):
            first = self.infos.get(name)
            where = f" (first from {first.module})" if first else ""
            raise PluginError(f"a plugin named {name!r} is already registered{where}", plugin=name)
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(_explain_validation(exc), plugin=name, hook=_hook_in(str(exc))) from None
        except ValueError as exc:
            raise PluginError(str(exc), plugin=name) from None
        self.infos[name] = info or PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        if self._collected:
            self._collected = False  # registries are rebuilt on next use

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._collected = False

    def load_local_plugin(self, path: str | Path) -> str:
        """Load a plant's own ``.py`` file as a plugin; its name is ``local:<stem>``."""
        path = Path(path).resolve()
        name = f"local:{path.stem}"
        if self.pm.has_plugin(name):
            return name
        module_name = f"forge_local_{path.stem}_{abs(hash(str(path))) & 0xFFFFFF:06x}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot load local plugin file {path}", plugin=name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise PluginError(f"local plugin {path} failed to import: {type(exc).__name__}: {exc}",
                              plugin=name) from exc
        finally:
            sys.path.remove(str(path.parent))
        self.register(module, name, info=PluginInfo(name=name, module=module_name, local_path=str(path)))
        return name

    def check_pending(self) -> None:
        """Fail loudly on an implementation of a hook that does not exist (a typo)."""
        known = hookspecs.hook_names()
        for hook_name in dir(self.pm.hook):
            if hook_name.startswith("_"):
                continue
            caller = getattr(self.pm.hook, hook_name)
            if caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                guess = difflib.get_close_matches(hook_name, known, n=1)
                fix = f"; did you mean {guess[0]!r}?" if guess else f"; known hooks: {', '.join(known)}"
                raise PluginError(f"implements unknown hook {hook_name!r}{fix}",
                                  plugin=impl.plugin_name, hook=hook_name)

    # -- registration hooks ----------------------------------------------------------------
    def collect(self) -> None:
        """Call every registration hook once, filling the registries."""
        if self._collected:
            return
        self.transports = TransportRegistry()
        self.components = ComponentRegistry()
        self.schemas = SchemaRegistry()
        self.tactics = TacticRegistry()
        self.sections = ManifestSectionRegistry()
        self._call_register("forge_register_transports", self.transports)
        self._call_register("forge_register_components", self.components)
        self._call_register("forge_register_schemas", self.schemas)
        self._call_register("forge_register_tactics", self.tactics)
        self._call_register("forge_register_manifest_sections", self.sections)
        for info in self.infos.values():
            info.provides = {
                "transports": self.transports.by_plugin(info.name),
                "components": self.components.by_plugin(info.name),
                "schemas": [s.type for s in self.schemas if s.plugin == info.name],
                "tactics": self.tactics.by_plugin(info.name),
                "manifest sections": self.sections.by_plugin(info.name),
            }
        self._collected = True

    def collect_commands(self) -> CommandRegistry:
        if not self._commands_collected:
            self.commands = CommandRegistry()
            self._call_register("forge_register_commands", self.commands)
            self._commands_collected = True
        return self.commands

    def collect_migrations(self, registry: MigrationRegistry) -> MigrationRegistry:
        self._call_register("forge_register_migrations", registry)
        return registry

    def _call_register(self, hook_name: str, registry: NamedRegistry[Any] | SchemaRegistry | Any) -> None:
        # Registration order (built-ins first), so "first registered by" names the earlier plugin.
        for impl in reversed(self._impls(hook_name)):
            registry.current_plugin = impl.plugin_name
            try:
                self._trace(hook_name, impl.plugin_name)
                impl.function(registry=registry)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"raised {type(exc).__name__}: {exc}", plugin=impl.plugin_name,
                                  hook=hook_name) from exc
            finally:
                registry.current_plugin = None

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        # pluggy calls the last registered (and tryfirst) first; keep that order.
        return [i for i in reversed(impls) if not (i.wrapper or i.hookwrapper)]

    def _notify(self, hook_name: str, *, swallow: bool, **kwargs: Any) -> None:
        for impl in self._impls(hook_name):
            try:
                self._trace(hook_name, impl.plugin_name)
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:
                error = PluginError(f"raised {type(exc).__name__}: {exc}", plugin=impl.plugin_name,
                                    hook=hook_name)
                if not swallow:
                    raise error from exc
                log.error("%s", error, exc_info=exc)

    def _trace(self, hook_name: str, plugin: str) -> None:
        if self._tracing:
            print(f"[forge trace] {hook_name} -> {plugin}", file=sys.stderr)

    # -- plant hooks -------------------------------------------------------------------------
    def validate_manifest(self, manifest: Manifest) -> list[ManifestProblem]:
        problems: list[ManifestProblem] = []
        for impl in self._impls("forge_validate_manifest"):
            try:
                found = impl.function(manifest=manifest)
            except Exception as exc:
                raise PluginError(f"raised {type(exc).__name__}: {exc}", plugin=impl.plugin_name,
                                  hook="forge_validate_manifest") from exc
            if found is None:
                continue
            if not isinstance(found, list) or not all(isinstance(p, ManifestProblem) for p in found):
                raise PluginError("must return a list of ManifestProblem or None, got "
                                  f"{type(found).__name__}", plugin=impl.plugin_name,
                                  hook="forge_validate_manifest")
            problems.extend(found)
        return problems

    def transport_ready(self, name: str, transport: Transport) -> None:
        self._notify("forge_transport_ready", swallow=False, name=name, transport=transport)

    def plant_started(self, runtime: Runtime) -> None:
        self._notify("forge_plant_started", swallow=False, runtime=runtime)

    def infer_message_type(self, topic: str, payload: Any) -> str | None:
        try:
            return self.pm.hook.forge_infer_message_type(topic=topic, payload=payload)
        except Exception as exc:
            raise PluginError(f"raised {type(exc).__name__}: {exc}", hook="forge_infer_message_type") from exc

    def message_dead_lettered(self, letter: DeadLetter) -> None:
        self._notify("forge_message_dead_lettered", swallow=True, letter=letter)

    def component_crashed(self, name: str, error: BaseException, restarts: int, gave_up: bool) -> None:
        self._notify("forge_component_crashed", swallow=True, name=name, error=error, restarts=restarts,
                     gave_up=gave_up)

    def heartbeat_payload(self, component: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for impl in reversed(self._impls("forge_heartbeat_payload")):
            try:
                extra = impl.function(component=component)
            except Exception as exc:
                log.error("%s", PluginError(f"raised {type(exc).__name__}: {exc}", plugin=impl.plugin_name,
                                            hook="forge_heartbeat_payload"), exc_info=exc)
                continue
            if extra is not None:
                if not isinstance(extra, dict):
                    log.error("plugin %r, hook 'forge_heartbeat_payload': must return a dict or None, got %s",
                              impl.plugin_name, type(extra).__name__)
                    continue
                merged.update(extra)
        return merged

    def source_status_changed(self, change: StatusChange, monitor: str) -> None:
        self._notify("forge_source_status_changed", swallow=True, change=change, monitor=monitor)

    def leadership_changed(self, lease: str, holder: str, epoch: int, leading: bool) -> None:
        self._notify("forge_leadership_changed", swallow=True, lease=lease, holder=holder, epoch=epoch,
                     leading=leading)

    def backpressure_changed(self, component: str, old_interval: float, new_interval: float, depth: int) -> None:
        self._notify("forge_backpressure_changed", swallow=True, component=component, old_interval=old_interval,
                     new_interval=new_interval, depth=depth)

    def plant_stopping(self, runtime: Runtime) -> None:
        self._notify("forge_plant_stopping", swallow=True, runtime=runtime)

    def plant_stopped(self, summary: RunSummary) -> None:
        self._notify("forge_plant_stopped", swallow=True, summary=summary)

    # -- views -------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        """What the installed plugins provide, for manifest validation."""
        from forge_core.manifest import Catalog

        self.collect()
        return Catalog(
            transports={e.name: e.schema for e in self.transports},
            components={e.name: e.schema for e in self.components},
            tactics={e.name: e.schema for e in self.tactics},
            sections={e.name: e.value for e in self.sections},
            plugins=set(self.infos) | {i.distribution.replace("-", "_") for i in self.infos.values()
                                       if i.distribution},
        )


def _hook_in(message: str) -> str | None:
    for name in hookspecs.hook_names():
        if name in message:
            return name
    return None


def _explain_validation(exc: pluggy.PluginValidationError) -> str:
    lines = str(exc).splitlines()
    detail = "; ".join(line.strip() for line in lines[1:]) or lines[0]
    if "Argument(s)" in detail:
        return f"{detail} — use only the parameter names of the hookspec (see docs/hooks.md)"
    return detail


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
            distribution=dist.name if dist else "",
        ))
