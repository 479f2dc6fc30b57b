"""The hooks of the ``b2mml`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:  # the registries' modules load jsonschema: not for listing the plugins (forge --help)
    from forge_core.plugin import CommandRegistry, ComponentRegistry, MigrationRegistry, SchemaRegistry


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("b2mml.drop_folder", "forge_b2mml.components.drop_folder:DropFolder")
    registry.add("b2mml.http_inbox", "forge_b2mml.components.http_inbox:HttpInbox")
    registry.add("b2mml.topic_inbox", "forge_b2mml.components.topic_inbox:TopicInbox")
    registry.add("b2mml.exporter", "forge_b2mml.components.exporter:Exporter")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    registry.add_directory(Path(__file__).parent / "schemas")


@hookimpl
def forge_register_migrations(registry: MigrationRegistry) -> None:
    if "b2mml" not in registry:
        # the transactions ledger (keys, pending messages, exports): one Alembic branch labelled "b2mml"
        registry.add("b2mml", Path(__file__).parent / "migrations", plugin="forge-b2mml")


@hookimpl
def forge_register_commands(registry: CommandRegistry) -> None:
    registry.add("b2mml", "forge_b2mml.cli:app", help="ISA-95 B2MML documents: validate, convert, samples.")
