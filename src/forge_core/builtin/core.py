"""The built-in plugin ``forge_core``: the in-memory transport, core message schemas, core
migrations and the built-in components."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:  # what this plugin registers is imported on first use (docs/performance.md, start-up)
    from forge_core.messages.schemas import SchemaRegistry
    from forge_core.registry import ComponentRegistry, ManifestSectionRegistry, TransportRegistry
    from forge_core.storage.migrations import MigrationRegistry
    from forge_core.transport.base import TransportContext
    from forge_core.transport.memory import MemorySettings, MemoryTransport


def _memory_factory(name: str, settings: MemorySettings, context: TransportContext) -> MemoryTransport:
    from forge_core.transport.memory import MemoryTransport

    return MemoryTransport(
        name, channel=settings.channel, max_redeliveries=settings.max_redeliveries, fault_seed=settings.fault_seed,
        batch_wait=settings.batch_wait
    )


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_transports(registry: TransportRegistry) -> None:
    registry.add(
        "memory",
        _memory_factory,
        settings="forge_core.transport.memory:MemorySettings",
        description="in-process bus with fault injection (embedded profile, tests)",
    )


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_schemas(registry: SchemaRegistry) -> None:
    from forge_core.messages.schemas import core_schema_dir

    registry.add_directory(core_schema_dir())


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("forge.logger", "forge_core.builtin.logger:MessageLogger")


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_migrations(registry: MigrationRegistry) -> None:
    from forge_core.storage.migrations import CORE_MIGRATIONS, CORE_VERSIONS_DIR

    if CORE_MIGRATIONS not in registry:
        registry.add(CORE_MIGRATIONS, Path(CORE_VERSIONS_DIR), plugin="forge_core")


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_manifest_sections(registry: ManifestSectionRegistry) -> None:
    registry.add(
        "dead_letters",
        "forge_core.messages.deadletter:DeadLetterSettings",
        description="bounds of the dead-letter path (issue 11 §3)",
    )
    registry.add(
        "dashboard",
        "forge_core.dashboard.settings:DashboardSettings",
        description="the web dashboard of forge run (docs/dashboard.md)",
    )
