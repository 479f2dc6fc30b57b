"""The built-in plugin ``forge_core``: the in-memory transport, core message schemas, core
migrations and the built-in components."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core.builtin.logger import MessageLogger
from forge_core.hookspecs import hookimpl
from forge_core.messages.schemas import core_schema_dir
from forge_core.transport.memory import MemorySettings, MemoryTransport

if TYPE_CHECKING:
    from forge_core.messages.schemas import SchemaRegistry
    from forge_core.registry import ComponentRegistry, ManifestSectionRegistry, TransportRegistry
    from forge_core.storage.migrations import MigrationRegistry
    from forge_core.transport.base import TransportContext


def _memory_factory(name: str, settings: MemorySettings, context: TransportContext) -> MemoryTransport:
    return MemoryTransport(name, channel=settings.channel, max_redeliveries=settings.max_redeliveries,
                           fault_seed=settings.fault_seed)


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_transports(registry: TransportRegistry) -> None:
    registry.add("memory", _memory_factory, settings=MemorySettings,
                 description="in-process bus with fault injection (embedded profile, tests)")


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(core_schema_dir())


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("forge.logger", MessageLogger)


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_migrations(registry: MigrationRegistry) -> None:
    from forge_core.storage.migrations import CORE_MIGRATIONS, CORE_VERSIONS_DIR

    if CORE_MIGRATIONS not in registry:
        registry.add(CORE_MIGRATIONS, Path(CORE_VERSIONS_DIR), plugin="forge_core")


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_manifest_sections(registry: ManifestSectionRegistry) -> None:
    from forge_core.dashboard.settings import DashboardSettings
    from forge_core.messages.deadletter import DeadLetterSettings

    registry.add("dead_letters", DeadLetterSettings, description="bounds of the dead-letter path (issue 11 §3)")
    registry.add("dashboard", DashboardSettings, description="the web dashboard of forge run (docs/dashboard.md)")
