"""The hooks of the ``sched`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, MigrationRegistry, SchemaRegistry, TacticRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sched.blade_scheduler", "forge_sched.components.blade_scheduler:BladeScheduler",
                 description="blade scheduler: discovery, balanced A/B, swap on failure and storage alerts, "
                             "active/shadow by leader election")
    registry.add("sched.order_scheduler", "forge_sched.components.order_scheduler:OrderScheduler",
                 description="order scheduler: orders over REST placed on the UP factory with the most free "
                             "capacity, moved when a factory fails (status reports over gRPC or the bus), "
                             "active/shadow by leader election")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    if "sched" not in registry:
        # the order scheduler's tables, one Alembic branch labelled "sched"
        registry.add("sched", Path(__file__).parent / "migrations", plugin="forge-sched")


@hookimpl
def forge_register_tactics(registry: TacticRegistry) -> None:
    # an implementation of forge_mms's kind; the registry pairs them by name in either load order. By path:
    # grpc loads when a plant builds this reporter, not when the plugins are listed or tactics collected
    registry.add("status_reporter.grpc", "forge_sched.tactics.status_reporter:grpc_status_reporter",
                 settings="forge_sched.settings:GrpcStatusReporterSettings",
                 description="reports factory status to the PMS over gRPC (forge.sched.v1.FactoryStatusService)")
