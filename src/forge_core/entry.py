"""One registered name (:class:`Entry`) and the import of a ``"module:attribute"`` path a plugin
registered instead of an object (:func:`resolve_target`): imported on first use, with errors that
name the plugin, the hook, the type and the path. The registries are in :mod:`forge_core.registry`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from forge_core.errors import PluginError

if TYPE_CHECKING:  # pydantic loads when an entry's settings are used, not at registration
    from forge_core.settings import Settings

T = TypeVar("T")

#: ``package.module:attribute.path``: what a lazily registered value is written as.
TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_UNSET: Any = object()


def resolve_target(target: str, *, what: str, plugin: str | None, hook: str) -> Any:
    """Import ``"module:attribute"``; a failure is a :class:`PluginError` naming ``what`` (the type),
    the plugin, the hook and the path, with the importer's own error."""
    module_name, _, attribute = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
    except Exception as exc:  # a missing dependency of the plugin, a syntax error in its module
        raise PluginError(
            f"{what}: cannot import {target!r}: {type(exc).__name__}: {exc}; reinstall the "
            "plugin's distribution (with its dependencies) or fix the path it registered",
            plugin=plugin,
            hook=hook,
        ) from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise PluginError(
                f"{what}: {target!r}: module {module_name!r} has no attribute {attribute!r}", plugin=plugin, hook=hook
            ) from None
    return value


class Entry(Generic[T]):
    """One registered name: its value, the plugin that registered it, and what comes with it
    (description, settings model, JSON Schema). A value or settings model registered as a
    ``"module:attribute"`` string is imported on first access of :attr:`value` or :attr:`settings`
    (:attr:`schema` and, without an explicit one, :attr:`description` may need either)."""

    def __init__(
        self,
        name: str,
        value: T | str,
        plugin: str | None,
        description: str = "",
        schema: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        settings: type[Settings] | str | None = None,
        *,
        kind: str = "name",
        hook: str = "",
        derive: Callable[[Entry[T], Any], T] | None = None,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.extra = dict(extra or {})
        self.kind = kind
        self.hook = hook
        self._target = value if isinstance(value, str) else None
        self._value: Any = _UNSET if isinstance(value, str) else value
        self._settings_target = settings if isinstance(settings, str) else None
        self._settings: Any = settings
        if isinstance(settings, str) or (settings is None and self._target is not None and derive is not None):
            self._settings = _UNSET  # a string to import, or what ``derive`` finds on the value
        self._schema = schema
        self._description = description
        #: called once with the imported value: checks it, may fill settings/schema/description
        self._derive = derive
        if self._target is None and derive is not None:
            self._value = derive(self, self._value)

    @property
    def target(self) -> str | None:
        """The ``"module:attribute"`` the value was registered as, or None for an object."""
        return self._target

    @property
    def loaded(self) -> bool:
        """Whether the value has been imported (always true for one registered as an object)."""
        return self._value is not _UNSET

    def _what(self) -> str:
        return f"{self.kind} {self.name!r}"

    @property
    def value(self) -> T:
        if self._value is _UNSET:
            assert self._target is not None
            value = resolve_target(self._target, what=self._what(), plugin=self.plugin, hook=self.hook)
            self._value = self._derive(self, value) if self._derive is not None else value
            if self._settings is _UNSET and self._settings_target is None:
                self._settings = None  # the value declared none
        result: T = self._value
        return result

    @property
    def settings(self) -> type[Settings] | None:
        """The pydantic declaration the schema comes from, if it comes from one."""
        if self._settings is _UNSET:
            if self._settings_target is None:  # derived from the value (a component class's Params)
                _ = self.value
            else:
                from forge_core.settings import Settings

                model = resolve_target(
                    self._settings_target, what=f"settings of {self._what()}", plugin=self.plugin, hook=self.hook
                )
                if not (isinstance(model, type) and issubclass(model, Settings)):
                    raise PluginError(
                        f"settings of {self._what()}: {self._settings_target!r} must be a "
                        f"forge_core.Settings subclass, got {model!r}",
                        plugin=self.plugin,
                        hook=self.hook,
                    )
                self._settings = model
        settings: type[Settings] | None = self._settings
        return settings

    @settings.setter
    def settings(self, model: type[Settings] | None) -> None:
        self._settings = model

    @property
    def schema(self) -> dict[str, Any] | None:
        """The settings/params JSON Schema contributed with it (from the settings model if any)."""
        if self._schema is None:
            if self._settings is _UNSET and self._settings_target is None:
                _ = self.value  # a lazily registered component: its Params say
            if self.settings is not None:
                from forge_core.settings import schema_of

                self._schema = schema_of(self.settings)
        return self._schema

    @schema.setter
    def schema(self, schema: dict[str, Any] | None) -> None:
        self._schema = schema

    @property
    def description(self) -> str:
        if not self._description and self._value is _UNSET and self._derive is not None:
            _ = self.value  # a lazily registered component without a description: its docstring's first line
        return self._description

    @description.setter
    def description(self, text: str) -> None:
        self._description = text

    def build_settings(self, data: dict[str, Any] | None, *, where: str = "") -> Any:
        """The settings object the factory gets: the declared model, defaults filled and checked
        (:class:`~forge_core.errors.SettingsError` naming ``where``), or for a plain JSON Schema
        the dict with its ``default`` values filled."""
        if self.settings is not None:
            return self.settings.load(data, where=where)
        from forge_core.settings import fill_defaults

        return fill_defaults(self.schema, data)

    def __repr__(self) -> str:
        shown = self._target if self._value is _UNSET else self._value
        return f"Entry({self.name!r}, {shown!r}, plugin={self.plugin!r})"


class LazyTable(Mapping[str, Any]):
    """``name -> get(entry)`` over registry entries, each value computed on first lookup and kept.

    The manifest's catalog names every installed transport and component type, but only the types a
    plant uses need their settings schema, and computing one imports the entry's module (a lazily
    registered component's Params): done eagerly for every installed plugin, that was 658 modules and
    several seconds of each ``forge run``, each distributed child's included. Names cost nothing.
    With ``omit_none`` an entry whose value is None is absent (``get`` gives the default); listing
    such a table computes every value."""

    def __init__(self, entries: Iterable[Any], get: Callable[[Any], Any], *, omit_none: bool = False) -> None:
        self._entries = {entry.name: entry for entry in entries}
        self._get = get
        self._omit_none = omit_none
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = self._get(self._entries[name])
        value = self._values[name]
        if value is None and self._omit_none:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in self._entries if n in self] if self._omit_none else self._entries)

    def __len__(self) -> int:
        return sum(1 for _ in self) if self._omit_none else len(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or name not in self._entries:
            return False
        if not self._omit_none:
            return True  # without computing the value
        try:
            self[name]
        except KeyError:
            return False
        return True
