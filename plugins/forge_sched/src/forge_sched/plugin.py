"""The hooks of the ``sched`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_sched.components.blade_scheduler import BladeScheduler
from forge_sched.components.order_scheduler import OrderScheduler

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, MigrationRegistry, SchemaRegistry, TacticRegistry

@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("sched.blade_scheduler", BladeScheduler,
                 description="blade scheduler: discovery, balanced A/B, swap on failure and storage alerts, "
                             "active/shadow by leader election")
    registry.add("sched.order_scheduler", OrderScheduler,
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
    # imported here: grpc loads only when the tactics are collected, not for every plugin listing
    from forge_sched.settings import GrpcStatusReporterSettings
    from forge_sched.tactics.status_reporter import DESCRIPTION, NAME, grpc_status_reporter

    # an implementation of forge_mms's kind; the registry pairs them by name in either load order
    registry.add(NAME, grpc_status_reporter, settings=GrpcStatusReporterSettings, description=DESCRIPTION)
