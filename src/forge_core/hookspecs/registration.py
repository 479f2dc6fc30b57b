"""Registration hooks: what a plugin adds to Forge (transports, components, schemas, tactics,
manifest sections, migrations, commands, drills). The plugin API; see docs/hooks.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs.markers import spec as _spec

if TYPE_CHECKING:
    from forge_core.messages.schemas import SchemaRegistry
    from forge_core.registry import (
        CommandRegistry,
        ComponentRegistry,
        DrillRegistry,
        ManifestSectionRegistry,
        TacticRegistry,
        TransportRegistry,
    )
    from forge_core.storage.migrations import MigrationRegistry

# ---------------------------------------------------------------------------------------------
# Registration hooks: called once per plugin manager, after every plugin is loaded.
# Each receives a registry and calls ``registry.add(...)``; nothing is returned.
# A name registered twice is refused with an error naming both plugins.
# ---------------------------------------------------------------------------------------------


@_spec
def forge_register_transports(registry: TransportRegistry) -> None:
    """Register transport types.

    Called once, after all plugins are loaded, before any manifest is read.

    :param registry: call ``registry.add(type_name, factory, settings=SettingsModel, description=...)``;
        ``factory(name, settings, context)`` gets the validated settings object (defaults filled) and
        returns a :class:`forge_core.transport.Transport` (see :class:`forge_core.transport.TransportFactory`).
        ``factory`` and ``settings`` may be ``"module:attribute"`` strings, imported on first use
        (``registry.add("mqtt", "forge_mqtt.transport:factory", settings="forge_mqtt.settings:MqttSettings")``).
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 factory and settings may be given as import paths.
    """


@_spec
def forge_register_components(registry: ComponentRegistry) -> None:
    """Register component types that a manifest can instantiate.

    Called once, after all plugins are loaded.

    :param registry: call ``registry.add(type_name, "package.module:ComponentClass")`` (imported on
        first use: building the component, validating a manifest that uses it) or
        ``registry.add(type_name, ComponentClass)``; the class's ``Params`` (a
        :class:`forge_core.Settings` model) declares its params: the manifest is checked against its
        schema and ``self.params`` is an instance with the defaults filled. ``factory(context)``
        returns a :class:`forge_core.Component`.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the class may be given as an import path.
    """


@_spec
def forge_register_schemas(registry: SchemaRegistry) -> None:
    """Register the JSON Schemas of the message types a plugin owns.

    Called once, after all plugins are loaded; a plant's own ``schemas`` directories are added
    after this hook.

    :param registry: call ``registry.add(type, schema_dict_or_path)`` or
        ``registry.add_directory(path)``.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@_spec
def forge_register_tactics(registry: TacticRegistry) -> None:
    """Register tactic kinds and their implementations (failure detectors, lease backends, failover
    policies, or a kind of the plugin's own).

    Called once, after all plugins are loaded.

    :param registry: a new kind: ``registry.add_kind("quota", settings=QuotaSettings,
        default_use="fixed")`` (``tactics.quota`` becomes a manifest section); an implementation:
        ``registry.add("<kind>.<use>", factory, settings=ImplSettings)``, e.g. ``leader.etcd``,
        ``detector.phi``; ``factory(settings, services)`` builds it (see docs/tactics/index.md). Factories
        and settings models may be ``"module:attribute"`` strings, imported on first use.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 factories and settings may be given as import paths.
    """


@_spec
def forge_register_manifest_sections(registry: ManifestSectionRegistry) -> None:
    """Declare a plugin's own ``settings.<name>`` manifest section.

    Called once, after all plugins are loaded, before manifests are validated.

    :param registry: call ``registry.add(section_name, SettingsModel)`` (or ``"module:SettingsModel"``,
        imported when a manifest is validated, or a JSON Schema dict); use the plugin's name.
        ``forge validate`` checks the section against it.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the model may be given as an import path.
    """


@_spec
def forge_register_migrations(registry: MigrationRegistry) -> None:
    """Contribute an alembic version folder; ``forge db upgrade`` applies every folder.

    Called once, when storage is prepared (``forge db upgrade`` or a run with
    ``storage.migrate_on_start``).

    :param registry: call ``registry.add(name, versions_dir)``; the folder's first revision
        carries ``branch_labels=(name,)`` and ``down_revision=None``.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@_spec
def forge_register_commands(registry: CommandRegistry) -> None:
    """Add commands to the ``forge`` CLI.

    Called when the CLI starts, for every installed plugin, ``forge --help`` included: register
    the command by path so that nothing is imported until it is used.

    :param registry: call ``registry.add(name, "package.cli:app", help=...)`` (or the typer app or
        function itself); a Typer app becomes a command group, a function a single command, under
        ``forge <plugin>``. ``forge --help`` lists the plugin's group with ``help`` and imports the
        path only when the group is run, asked for its help or completed.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the command may be given as an import path, and is then loaded lazily.
    """


@_spec
def forge_register_drills(registry: DrillRegistry) -> None:
    """Offer failure drills for a plant: ``forge drill PLANT SCENARIO`` runs them.

    Called when ``forge drill`` has loaded the plant, once per plugin manager, with only the
    plugins the plant lists (and its local plugins) active: a plant's drills come from its own
    plugin.

    :param registry: call ``registry.add(scenario)`` with a :class:`forge_core.plugin.DrillScenario`
        (``name``, ``description``, ``phases``, ``run(plant_dir, options) -> DrillReport``); a
        name registered twice is refused naming both plugins.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.2
    """
