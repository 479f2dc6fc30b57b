"""Registries that registration hooks fill in: one per kind of thing a plugin can provide.

A hook receives the registry and calls ``registry.add(...)`` (tox's pattern), rather than
returning lists. Every registry refuses a name registered twice and names both plugins.

What a plugin registers may be given as the object itself or as a ``"module:attribute"`` string
(``registry.add("mqtt", "forge_mqtt.transport:factory", settings="forge_mqtt.settings:MqttSettings")``):
the string is imported on first use of the entry (building a component, validating a manifest
that uses the type, running a command), so loading the plugins (``forge --help``) imports no
component, client library or settings model. A string that is not ``module:attribute`` is refused
at registration; one that does not import is a :class:`~forge_core.errors.PluginError` naming the
plugin, the hook, the type and the path when the entry is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from forge_core.entry import TARGET, Entry
from forge_core.errors import DuplicateRegistration, PluginError, UnknownRegistration

if TYPE_CHECKING:  # pydantic (settings) and the transports load when an entry is used, not at registration
    from forge_core.drills import DrillScenario
    from forge_core.settings import Settings
    from forge_core.transport.base import TransportFactory

T = TypeVar("T")

class NamedRegistry(Generic[T]):
    """Name → entry, with the registering plugin remembered for errors and ``forge plugins``."""

    #: What the registry holds, for messages ("transport type").
    kind = "name"
    hook = ""

    def __init__(self) -> None:
        self._entries: dict[str, Entry[T]] = {}
        #: Set by the plugin manager while it calls one plugin's hook implementation.
        self.current_plugin: str | None = None

    def _add(
        self,
        name: str,
        value: T | str,
        *,
        description: str = "",
        schema: dict[str, Any] | None = None,
        settings: type[Settings] | str | None = None,
        plugin: str | None = None,
        derive: Callable[[Entry[T], Any], T] | None = None,
        **extra: Any,
    ) -> Entry[T]:
        if not isinstance(name, str) or not name:
            raise DuplicateRegistration(
                f"{self.kind} name must be a non-empty string, got {name!r}",
                plugin=plugin or self.current_plugin,
                hook=self.hook,
            )
        plugin = plugin or self.current_plugin
        for label, path in (("", value), ("settings of ", settings)):
            if isinstance(path, str) and not TARGET.match(path):
                raise PluginError(
                    f"{label}{self.kind} {name!r}: {path!r} is not an import path; write "
                    "'package.module:attribute' (e.g. 'forge_acme.components.press:Press') or "
                    "pass the object itself",
                    plugin=plugin,
                    hook=self.hook,
                )
        existing = self._entries.get(name)
        if existing is not None:
            raise DuplicateRegistration(
                f"{self.kind} {name!r} is registered twice: first by plugin {existing.plugin!r}, "
                f"again by plugin {plugin!r}; uninstall one of them or register under another name",
                plugin=plugin,
                hook=self.hook,
            )
        entry = Entry(
            name,
            value,
            plugin,
            description,
            schema,
            dict(extra),
            settings,
            kind=self.kind,
            hook=self.hook,
            derive=derive,
        )
        self._entries[name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownRegistration(self.kind, name, sorted(self._entries)) from None

    def by_plugin(self, plugin: str) -> list[str]:
        return [e.name for e in self._entries.values() if e.plugin == plugin]

    def load_all(self) -> list[PluginError]:
        """Import every lazily registered entry now; the errors, one per broken entry (a plugin's
        test or ``forge plugins --check`` calls this so a wrong path fails before a plant uses it)."""
        errors: list[PluginError] = []
        for entry in self._entries.values():
            try:
                _ = entry.value, entry.settings
            except PluginError as exc:
                errors.append(exc)
        return errors


class TransportRegistry(NamedRegistry["TransportFactory"]):
    """``registry.add("mqtt", "forge_mqtt.transport:factory", settings="forge_mqtt.settings:MqttSettings")``
    (or the objects themselves); factory(name, settings, ctx) gets the
    settings object built from the manifest (defaults filled)."""

    kind = "transport type"
    hook = "forge_register_transports"

    def add(
        self,
        type_name: str,
        factory: TransportFactory | str,
        *,
        settings: type[Settings] | str | None = None,
        settings_schema: dict[str, Any] | None = None,
        description: str = "",
    ) -> Entry[TransportFactory]:
        return self._add(type_name, factory, description=description, schema=settings_schema, settings=settings)


class ComponentRegistry(NamedRegistry[Callable[..., Any]]):
    """``registry.add("bakery.oven", "bakery.components.oven:Oven")`` (imported on first use) or
    ``registry.add("bakery.oven", Oven)``; the params come from the class's ``Params`` (a
    :class:`~forge_core.settings.Settings` model) or, for plain JSON Schema, ``params_schema``."""

    kind = "component type"
    hook = "forge_register_components"

    def add(
        self,
        type_name: str,
        factory: Callable[..., Any] | str,
        *,
        params_schema: dict[str, Any] | None = None,
        description: str = "",
    ) -> Entry[Callable[..., Any]]:
        return self._add(
            type_name,
            factory,
            description=description,
            schema=params_schema,
            derive=_component_params if params_schema is None else _first_doc_line,
        )


def _first_doc_line(entry: Entry[Any], factory: Any) -> Any:
    if not entry._description:  # the field: the property would import the value, which is being imported
        entry.description = next(iter((getattr(factory, "__doc__", None) or "").strip().splitlines()), "")
    return factory


def _component_params(entry: Entry[Any], factory: Any) -> Any:
    """A component class's ``Params`` (or plain ``params_schema``) become the entry's settings/schema."""
    from forge_core.settings import Settings

    model = getattr(factory, "Params", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, Settings)):
        raise PluginError(
            f"component type {entry.name!r}: Params must be a forge_core.Settings subclass, got {model!r}",
            plugin=entry.plugin,
            hook=entry.hook,
        )
    entry.settings = model
    if model is None:
        entry.schema = getattr(factory, "params_schema", None)
    return _first_doc_line(entry, factory)


@dataclass(frozen=True)
class TacticKind:
    """A registered tactic kind (the value of its registry entry): its default implementation,
    ``None`` when the kind has no implementations to choose from (``heartbeat``, ``retry``)."""

    default_use: str | None = None


class TacticRegistry(NamedRegistry[Any]):
    """Tactic kinds and their implementations.

    A **kind** is a key of the manifest's ``tactics:`` section with the settings every
    implementation shares: ``registry.add_kind("leader", settings=LeaderSettings, default_use="memory")``.
    An **implementation** is ``<kind>.<use>`` with its own settings and a factory called as
    ``factory(settings, services)``: ``registry.add("leader.redis", make, settings=RedisLeaseSettings)``.
    In the manifest the implementation's settings sit beside the kind's:
    ``leader: {use: redis, ttl: 2.0, url: ...}``.
    """

    kind = "tactic"
    hook = "forge_register_tactics"

    def add(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        settings: type[Settings] | str | None = None,
        settings_schema: dict[str, Any] | None = None,
        description: str = "",
    ) -> Entry[Callable[..., Any]]:
        return self._add(name, factory, description=description, schema=settings_schema, settings=settings)

    def add_kind(
        self,
        kind: str,
        *,
        settings: type[Settings] | str | None = None,
        default_use: str | None = None,
        description: str = "",
    ) -> Entry[Any]:
        """Register a tactic kind: ``tactics.<kind>`` becomes a manifest section checked against
        ``settings`` (plus ``use:`` and the chosen implementation's settings when it has any)."""
        if "." in kind:
            raise DuplicateRegistration(
                f"tactic kind {kind!r} must not contain '.'; implementations are "
                "registered as '<kind>.<name>' with registry.add",
                plugin=self.current_plugin,
                hook=self.hook,
            )
        return self._add(
            kind,
            TacticKind(default_use),
            description=description or f"{kind} tactic settings",
            settings=settings or "forge_core.registry:_NoSettings",
        )

    # -- what a kind's manifest section holds -------------------------------------------------
    def kinds(self) -> list[str]:
        return sorted(e.name for e in self if isinstance(e.value, TacticKind))

    def implementations(self, kind: str) -> list[str]:
        """The ``use:`` names registered for ``kind`` (``["memory", "redis", "sql"]``)."""
        return sorted(e.name.split(".", 1)[1] for e in self if e.name.startswith(kind + "."))

    def default_use(self, kind: str) -> str | None:
        value = self.get(kind).value
        return value.default_use if isinstance(value, TacticKind) else None

    def split(self, kind: str, data: dict[str, Any] | None) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        """``(use, kind's keys, the implementation's keys)`` of a ``tactics.<kind>`` section."""
        data = dict(data or {})
        use = data.pop("use", None) or self.default_use(kind)
        own = set((self.get(kind).schema or {}).get("properties", {}))
        return use, {k: v for k, v in data.items() if k in own}, {k: v for k, v in data.items() if k not in own}

    def section_schema(self, kind: str) -> dict[str, Any] | None:
        """The JSON Schema of the manifest's ``tactics.<kind>``: the kind's keys, ``use`` (one of the
        registered implementations) and, per implementation, its keys; any other key is an error."""
        entry = self.get(kind)
        if not isinstance(entry.value, TacticKind):
            return entry.schema
        base = entry.schema or {"type": "object", "properties": {}}
        props = dict(base.get("properties", {}))
        uses = self.implementations(kind)
        default = entry.value.default_use
        if not uses:
            return {**base, "properties": props, "additionalProperties": False}
        props["use"] = {
            "enum": uses,
            "description": f"implementation: {kind}.<use>",
            **({"default": default} if default else {}),
        }
        branches: list[dict[str, Any]] = []
        impl_keys = {use: set((self.get(f"{kind}.{use}").schema or {}).get("properties", {})) for use in uses}
        for use in uses:
            impl = self.get(f"{kind}.{use}").schema or {"type": "object", "properties": {}}
            for key in impl.get("properties", {}):
                props.setdefault(key, {})  # any value here; the branch below checks it for its use
            chosen: dict[str, Any] = {"properties": {"use": {"const": use}}, "required": ["use"]}
            if use == default:
                chosen = {"anyOf": [chosen, {"not": {"required": ["use"]}}]}
            then = {k: v for k, v in impl.items() if k in ("properties", "required")}
            foreign = sorted(set().union(*impl_keys.values()) - impl_keys[use] - set(base.get("properties", {})))
            if foreign:
                then["propertyNames"] = {
                    "not": {"enum": foreign},
                    "description": (f"a setting of another implementation of {kind}, not of use: {use}"),
                }
            branches.append({"if": chosen, "then": then})
        return {"type": "object", "properties": props, "additionalProperties": False, "allOf": branches}


class CommandRegistry(NamedRegistry[Any]):
    """CLI commands: ``registry.add("acme", "forge_acme.cli:app", help=...)`` (a typer app or a
    function, imported when the command runs: ``forge --help`` lists it by name and ``help``)."""

    kind = "CLI command"
    hook = "forge_register_commands"

    def add(self, name: str, command: Any, *, help: str = "") -> Entry[Any]:
        return self._add(name, command, description=help)


class DrillRegistry(NamedRegistry["DrillScenario"]):
    """Failure drills ``forge drill PLANT SCENARIO`` runs: ``registry.add(BrokerFailure())``, a
    :class:`~forge_core.drills.DrillScenario` whose ``name`` is the scenario's CLI word."""

    kind = "drill scenario"
    hook = "forge_register_drills"

    def add(self, scenario: DrillScenario) -> Entry[DrillScenario]:
        from forge_core.drills import check_scenario

        problem = check_scenario(scenario)
        if problem is not None:
            raise PluginError(problem, plugin=self.current_plugin, hook=self.hook)
        return self._add(scenario.name, scenario, description=scenario.description)


class ManifestSectionRegistry(NamedRegistry[dict[str, Any]]):
    """The declaration of a plugin's own ``settings.<name>`` section of the manifest: a
    :class:`~forge_core.settings.Settings` model (``entry.build_settings(manifest.settings[name])``
    gives the typed object, defaults filled) or a plain JSON Schema dict."""

    kind = "manifest section"
    hook = "forge_register_manifest_sections"

    def add(
        self, name: str, schema: type[Settings] | dict[str, Any] | str, *, description: str = ""
    ) -> Entry[dict[str, Any]]:
        if isinstance(schema, str):  # "module:Model", imported when a manifest is validated
            return self._add(name, schema, description=description, derive=_section_schema)
        if isinstance(schema, dict):
            return self._add(name, dict(schema), description=description, schema=dict(schema))
        model: Any = schema  # the entry's value becomes the model's schema (_section_schema)
        return self._add(name, model, description=description, derive=_section_schema)


def _section_schema(entry: Entry[Any], declaration: Any) -> dict[str, Any]:
    """A section declared by a Settings model: the entry's value is its JSON Schema."""
    from forge_core.settings import Settings

    if isinstance(declaration, dict):
        entry.schema = dict(declaration)
        return dict(declaration)
    if not (isinstance(declaration, type) and issubclass(declaration, Settings)):
        raise PluginError(
            f"manifest section {entry.name!r}: must be a forge_core.Settings subclass or a JSON "
            f"Schema dict, got {declaration!r}",
            plugin=entry.plugin,
            hook=entry.hook,
        )
    entry.settings = declaration
    schema: dict[str, Any] = declaration.json_schema()
    return schema


def __getattr__(name: str) -> Any:
    """``_NoSettings``, the settings of a tactic kind without settings of its own (only ``use:``),
    built on first use so that importing the registries loads no pydantic."""
    if name == "_NoSettings":
        from forge_core.settings import Settings

        model = type(
            "_NoSettings",
            (Settings,),
            {"__doc__": "A tactic kind without settings of its own (only ``use:``).", "__module__": __name__},
        )
        globals()["_NoSettings"] = model
        return model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
