"""The plugin manager's typed facade: one method per hook, the registries the registration hooks
fill, plant scope (which installed plugins take part) and the catalog a manifest is checked against."""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from forge_core import hookspecs
from forge_core.errors import ManifestProblem, PluginError
from forge_core.plugins.guard import explain_validation, guard, hook_in
from forge_core.registry import (
    CommandRegistry,
    ComponentRegistry,
    DrillRegistry,
    ManifestSectionRegistry,
    TacticRegistry,
    TransportRegistry,
)

if TYPE_CHECKING:
    from forge_core.checks import Check
    from forge_core.dashboard.panels import Panel
    from forge_core.manifest import Catalog, Manifest
    from forge_core.messages.deadletter import DeadLetter
    from forge_core.messages.schemas import SchemaRegistry
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary
    from forge_core.storage.migrations import MigrationRegistry
    from forge_core.tactics.heartbeat_status import StatusChange
    from forge_core.transport.base import Transport

log = logging.getLogger("forge.plugins")


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str = ""
    distribution: str = ""
    builtin: bool = False
    local_path: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)
    #: An installed (entry-point) plugin: active for a plant only when its manifest lists it under
    #: ``plugins:``. Built-ins, a plant's local plugins and plugins registered in code are always active.
    scoped: bool = False

    def keys(self) -> set[str]:
        """The names a manifest may list it by: entry-point name or distribution name."""
        from forge_core.manifest.model import plugin_key

        return {plugin_key(n) for n in (self.name, self.distribution) if n}

    def hooks(self, pm: pluggy.PluginManager) -> list[str]:
        plugin = pm.get_plugin(self.name)
        if plugin is None:
            return []
        return sorted(c.name for c in pm.get_hookcallers(plugin) or [])


class Plugins:
    """The plugin manager with one typed method per hook, and the registries it fills."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.infos: dict[str, PluginInfo] = {}
        self.transports = TransportRegistry()
        self.components = ComponentRegistry()
        self._schemas: SchemaRegistry | None = None  # built on first use: it loads jsonschema
        self.tactics = TacticRegistry()
        self.sections = ManifestSectionRegistry()
        self.commands = CommandRegistry()
        self.drills = DrillRegistry()
        self._collected = False
        self._commands_collected = False
        self._drills_collected = False
        #: Scoped plugins a plant did not list (see :meth:`activate`); their hooks are not called.
        self.inactive: frozenset[str] = frozenset()
        self._callers: dict[str, Any] = {}
        self._tracing = os.environ.get("FORGE_TRACE_PLUGINS", "") not in ("", "0")
        self._impl_trace = pm.trace.root.get("plugin")
        if self._tracing:
            pm.trace.root.setwriter(_write_stderr)
            pm.enable_tracing()

    @property
    def schemas(self) -> SchemaRegistry:
        """The message schemas (``forge_register_schemas``); created on first use, so that listing
        the plugins and their commands (``forge --help``) loads no JSON Schema library."""
        if self._schemas is None:
            from forge_core.messages.schemas import SchemaRegistry

            self._schemas = SchemaRegistry()
        return self._schemas

    @schemas.setter
    def schemas(self, registry: SchemaRegistry) -> None:
        self._schemas = registry

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
            raise PluginError(explain_validation(exc), plugin=name, hook=hook_in(str(exc))) from None
        except ValueError as exc:
            raise PluginError(str(exc), plugin=name) from None
        trace = self._impl_trace if self._tracing else None
        for caller in self.pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    # pluggy marks HookImpl.function Final for its own users; replacing it here is
                    # what keeps pluggy's call loop while naming the plugin that raised.
                    setattr(impl, "function", guard(caller.name, name, impl.argnames, impl.function, trace))  # noqa: B010
        self.infos[name] = info or PluginInfo(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        self._callers.clear()
        self._drills_collected = False
        if self._collected:
            self._collected = False  # registries are rebuilt on next use

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.infos.pop(name, None)
        self._callers.clear()
        self._collected = False

    # -- plant scope -------------------------------------------------------------------------
    def activate(self, listed: Iterable[str] | None) -> None:
        """Make only the scoped plugins named in ``listed`` (a manifest's ``plugins:``, entry-point
        or distribution names) take part in hook calls, besides the always-active ones; ``None``
        activates everything installed. The registries are rebuilt on next use, so migrations,
        component types, schemas and manifest sections of other plugins do not apply."""
        from forge_core.manifest.model import plugin_key

        if listed is None:
            inactive: frozenset[str] = frozenset()
        else:
            wanted = {plugin_key(n) for n in listed}
            inactive = frozenset(n for n, i in self.infos.items() if i.scoped and not i.keys() & wanted)
        if inactive != self.inactive:
            self.inactive = inactive
            self._callers.clear()
            self._collected = False
            self._commands_collected = False
            self._drills_collected = False

    @property
    def active(self) -> list[str]:
        return [name for name in self.infos if name not in self.inactive]

    def _hook(self, name: str) -> Any:
        """``pm.hook.<name>``, or pluggy's subset caller without the inactive plugins."""
        if not self.inactive:
            return getattr(self.pm.hook, name)
        caller = self._callers.get(name)
        if caller is None:
            remove = [p for p in (self.pm.get_plugin(n) for n in self.inactive) if p is not None]
            caller = self._callers[name] = self.pm.subset_hook_caller(name, remove)
        return caller

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
        from forge_core.messages.schemas import SchemaRegistry

        self.schemas = SchemaRegistry()
        self.tactics = TacticRegistry()
        self.sections = ManifestSectionRegistry()
        self._hook("forge_register_transports")(registry=self.transports)
        self._hook("forge_register_components")(registry=self.components)
        self._hook("forge_register_schemas")(registry=self.schemas)
        self._hook("forge_register_tactics")(registry=self.tactics)
        self._hook("forge_register_manifest_sections")(registry=self.sections)
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
            self._hook("forge_register_commands")(registry=self.commands)
            self._commands_collected = True
        return self.commands

    def collect_drills(self) -> DrillRegistry:
        """The failure drills of the active plugins (``forge_register_drills``), collected once per scope."""
        if not self._drills_collected:
            self.drills = DrillRegistry()
            self._hook("forge_register_drills")(registry=self.drills)
            self._drills_collected = True
        return self.drills

    def collect_migrations(self, registry: MigrationRegistry) -> MigrationRegistry:
        self._hook("forge_register_migrations")(registry=registry)
        return registry

    # -- plant hooks -------------------------------------------------------------------------
    def validate_manifest(self, manifest: Manifest) -> list[ManifestProblem]:
        problems: list[ManifestProblem] = []
        for found in reversed(self._hook("forge_validate_manifest")(manifest=manifest)):
            problems.extend(found)  # each implementation's list was checked by its guard
        return problems

    def transport_ready(self, name: str, transport: Transport) -> None:
        self._hook("forge_transport_ready")(name=name, transport=transport)

    def plant_started(self, runtime: Runtime) -> None:
        self._hook("forge_plant_started")(runtime=runtime)

    def infer_message_type(self, topic: str, payload: Any) -> str | None:
        result: str | None = self._hook("forge_infer_message_type")(topic=topic, payload=payload)
        return result

    def implemented(self, hook: str) -> bool:
        """Whether an active plugin implements ``hook`` (a caller on a hot path can skip the call)."""
        return bool(self._hook(hook).get_hookimpls())

    def message_dead_lettered(self, letter: DeadLetter) -> None:
        self._hook("forge_message_dead_lettered")(letter=letter)

    def component_crashed(self, name: str, error: BaseException, restarts: int, gave_up: bool) -> None:
        self._hook("forge_component_crashed")(name=name, error=error, restarts=restarts, gave_up=gave_up)

    def heartbeat_payload(self, component: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        # pluggy returns the last registered plugin's result first; merge so later plugins win.
        for extra in reversed(self._hook("forge_heartbeat_payload")(component=component)):
            merged.update(extra)
        return merged

    def source_status_changed(self, change: StatusChange, monitor: str) -> None:
        self._hook("forge_source_status_changed")(change=change, monitor=monitor)

    def leadership_changed(self, lease: str, holder: str, epoch: int, leading: bool) -> None:
        self._hook("forge_leadership_changed")(lease=lease, holder=holder, epoch=epoch, leading=leading)

    def backpressure_changed(self, component: str, old_interval: float, new_interval: float, depth: int) -> None:
        self._hook("forge_backpressure_changed")(component=component, old_interval=old_interval,
                                                new_interval=new_interval, depth=depth)

    def plant_stopping(self, runtime: Runtime) -> None:
        self._hook("forge_plant_stopping")(runtime=runtime)

    def plant_checks(self, summary: RunSummary) -> list[Check]:
        """Every active plugin's whole-plant checks; a plugin whose hook raises gets one failing check."""
        from forge_core.checks import Check

        checks: list[Check] = []
        for impl in self._hook("forge_plant_checks").get_hookimpls():
            try:  # one at a time (not pm.hook's loop): one broken plugin must not hide the others' verdicts
                found = impl.function(summary) or []  # guarded: positional, errors attributed to the plugin
            except PluginError as exc:
                log.error("%s", exc, exc_info=exc)
                checks.append(Check(f"plant checks of {impl.plugin_name}", False, str(exc), "plant"))
                continue
            for check in found:
                check.component = check.component or "plant"
                checks.append(check)
        return checks

    def dashboard_panels(self, runtime: Runtime) -> list[Panel]:
        """Every active plugin's dashboard panel; a plugin whose hook raises gets an error panel."""
        from forge_core.dashboard.panels import Panel

        panels: list[Panel] = []
        for impl in self._hook("forge_dashboard_panel").get_hookimpls():  # in registration order
            try:  # one at a time: one broken plugin must not hide the other panels
                panel = impl.function(runtime)
            except PluginError as exc:
                log.error("%s", exc, exc_info=exc)
                panels.append(Panel(f"{impl.plugin_name}: panel failed", {"error": str(exc)}))
                continue
            if panel is not None:
                panels.append(panel)
        return panels

    def plant_stopped(self, summary: RunSummary) -> None:
        self._hook("forge_plant_stopped")(summary=summary)

    # -- views -------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        """What the active plugins provide, for manifest validation, with who provides what and
        which plugins a plant must list to use."""
        from forge_core.entry import LazyTable
        from forge_core.manifest import Catalog

        self.collect()
        # A schema or model is computed when a manifest names its type (it imports the entry's
        # module), from the registries of this moment: activate() and collect() replace them, and
        # forge validate checks every profile against one catalog built with every plugin active.
        registry = self.tactics
        tactics = LazyTable(registry, lambda e: registry.section_schema(e.name))
        return Catalog(
            transports=LazyTable(self.transports, lambda e: e.schema),
            components=LazyTable(self.components, lambda e: e.schema),
            tactics=tactics,
            sections={e.name: e.value for e in self.sections},
            plugins=set(self.infos) | {i.distribution.replace("-", "_") for i in self.infos.values()
                                       if i.distribution},
            providers={kind: {e.name: e.plugin for e in registry if e.plugin}
                       for kind, registry in (("transports", self.transports), ("components", self.components),
                                              ("tactics", self.tactics), ("sections", self.sections))},
            listable={name: info.keys() for name, info in self.infos.items() if info.scoped},
            models={kind: LazyTable(registry, lambda e: e.settings, omit_none=True)
                    for kind, registry in (("transports", self.transports), ("components", self.components))},
        )


def _write_stderr(line: str) -> None:
    sys.stderr.write(line)  # looked up per call, so a redirected stderr (capsys, a log file) gets it
