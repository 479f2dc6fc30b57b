"""Every hook Forge offers, importable from here, grouped by the phase of a plant's life.

Lifecycle (see docs/hooks.md for the diagram)::

    load plugins → register (transports, components, schemas, tactics, manifest sections,
    migrations, commands) → load plant (validate manifest) → connect (transport ready)
    → run (plant started; per message: infer type, dead letters; component crashes)
    → shutdown (plant stopping, plant stopped)

The hooks are declared by phase in :mod:`~forge_core.hookspecs.registration` and
:mod:`~forge_core.hookspecs.lifecycle`, and every one is importable from here, where pluggy
reads them (``PluginManager.add_hookspecs(forge_core.hookspecs)``).

Implement a hook in a plugin module with ``from forge_core import hookimpl`` and a function of
the same name; declare the module under the ``forge`` entry-point group.
"""

from __future__ import annotations

from types import ModuleType

from forge_core.hookspecs import lifecycle, registration
from forge_core.hookspecs.lifecycle import (
    forge_backpressure_changed,
    forge_component_crashed,
    forge_dashboard_panel,
    forge_heartbeat_payload,
    forge_infer_message_type,
    forge_leadership_changed,
    forge_message_dead_lettered,
    forge_plant_checks,
    forge_plant_started,
    forge_plant_stopped,
    forge_plant_stopping,
    forge_source_status_changed,
    forge_transport_ready,
    forge_validate_manifest,
)
from forge_core.hookspecs.markers import PROJECT, hookimpl
from forge_core.hookspecs.registration import (
    forge_register_commands,
    forge_register_components,
    forge_register_drills,
    forge_register_manifest_sections,
    forge_register_migrations,
    forge_register_schemas,
    forge_register_tactics,
    forge_register_transports,
)

__all__ = [
    "PROJECT",
    "forge_backpressure_changed",
    "forge_component_crashed",
    "forge_dashboard_panel",
    "forge_heartbeat_payload",
    "forge_infer_message_type",
    "forge_leadership_changed",
    "forge_message_dead_lettered",
    "forge_plant_checks",
    "forge_plant_started",
    "forge_plant_stopped",
    "forge_plant_stopping",
    "forge_register_commands",
    "forge_register_components",
    "forge_register_drills",
    "forge_register_manifest_sections",
    "forge_register_migrations",
    "forge_register_schemas",
    "forge_register_tactics",
    "forge_register_transports",
    "forge_source_status_changed",
    "forge_transport_ready",
    "forge_validate_manifest",
    "hook_names",
    "hookimpl",
]

#: The modules declaring hooks, in the order of a plant's life.
_PHASES: tuple[ModuleType, ...] = (registration, lifecycle)


def hook_names() -> list[str]:
    """The names of every hook, in the order of a plant's life and of their files (used by docs and
    meta-tests)."""
    return [name for module in _PHASES for name, value in vars(module).items()
            if name.startswith("forge_") and callable(value) and getattr(value, "__module__", "") == module.__name__]
