"""The hooks of the ``b2mml`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path

from forge_core.plugin import CommandRegistry, ComponentRegistry, MigrationRegistry, SchemaRegistry, hookimpl

from forge_b2mml.components.drop_folder import DropFolder
from forge_b2mml.components.exporter import Exporter
from forge_b2mml.components.http_inbox import HttpInbox
from forge_b2mml.components.topic_inbox import TopicInbox


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("b2mml.drop_folder", DropFolder)
    registry.add("b2mml.http_inbox", HttpInbox)
    registry.add("b2mml.topic_inbox", TopicInbox)
    registry.add("b2mml.exporter", Exporter)


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
    from forge_b2mml.cli import app

    registry.add("b2mml", app, help="ISA-95 B2MML documents: validate, convert, samples.")
