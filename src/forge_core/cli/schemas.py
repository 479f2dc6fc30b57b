"""``forge schemas``: list, show and check the JSON Schemas of message types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from forge_core.cli.output import console, print_json
from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.cli.main import CliState
    from forge_core.messages.schemas import SchemaRegistry

PlantOption = Annotated[Path | None, typer.Option("--plant", metavar="PATH",
                                                  help="Also include this plant's own schemas.")]


def _registry(state: CliState, plant: Path | None) -> SchemaRegistry:
    if plant is None:
        plugins = state.fresh()
        plugins.collect()
        return plugins.schemas
    from forge_core.cli.validate import require_manifest
    from forge_core.plant import load_plant

    plugins, _ = load_plant(require_manifest(plant), plugins=state.fresh())
    return plugins.schemas


def read_message(file: Path, type_: str | None) -> tuple[str, Any]:
    """(type, payload) from a JSON file: a bare payload (needs ``type_``) or a CloudEvents
    structured document (``type`` and ``data``; ``type_`` overrides its type)."""
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ForgeError(f"message file {file} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ForgeError(f"{file}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    is_event = isinstance(doc, dict) and "data" in doc and isinstance(doc.get("type"), str) and (
        "specversion" in doc or type_ is None)
    if is_event:
        return type_ or doc["type"], doc["data"]
    if type_ is None:
        raise ForgeError(f"{file} is a bare payload (no CloudEvents 'type' and 'data'); say which message type "
                         "it is with --type TYPE")
    return type_, doc


def register(app: typer.Typer, state: CliState) -> None:
    group = typer.Typer(help="Message types and their JSON Schemas.", no_args_is_help=True)
    app.add_typer(group, name="schemas")

    @group.command("list")
    def list_schemas(
        plant: PlantOption = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    ) -> None:
        """List every registered message type: version, plugin and the file it came from."""
        registry = _registry(state, plant)
        rows = [{"type": s.type, "version": s.version, "plugin": s.plugin, "origin": s.origin}
                for s in sorted(registry, key=lambda s: s.type)]
        if json_out:
            print_json(rows)
            return
        table = Table(title=f"{len(rows)} message types", title_justify="left")
        for column in ("type", "version", "plugin", "origin"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(escape(str(row["type"])), str(row["version"]), escape(str(row["plugin"] or "-")),
                          escape(str(row["origin"] or "-")))
        console().print(table)

    @group.command("show")
    def show(
        type_: Annotated[str, typer.Argument(metavar="TYPE", help="The message type, e.g. forge.deadletter.")],
        plant: PlantOption = None,
    ) -> None:
        """Print the JSON Schema of a message type."""
        entry = _registry(state, plant).get(type_)
        out = console()
        out.print(f"[dim]# {escape(entry.type)} v{entry.version} from {escape(entry.plugin or '-')} "
                  f"{escape(entry.origin)}[/]")
        from rich.syntax import Syntax  # pygments: 0.1-0.2 s, only when a schema is shown

        out.print(Syntax(json.dumps(entry.schema, indent=2), "json", background_color="default"))

    @group.command("validate")
    def validate(
        file: Annotated[Path, typer.Argument(
            metavar="FILE", help="A JSON payload, or a CloudEvents structured JSON message.")],
        type_: Annotated[str | None, typer.Option(
            "--type", "-t", metavar="TYPE", help="The message type (required for a bare payload).")] = None,
        plant: PlantOption = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Check a message against its type's schema; print each error with its JSON pointer.

        Exit code 1 when it is invalid.
        """
        message_type, payload = read_message(file, type_)
        errors = _registry(state, plant).errors(message_type, payload)
        if json_out:
            print_json({"ok": not errors, "type": message_type, "file": str(file), "errors": errors})
        else:
            out = console()
            if errors:
                out.print(f"[bold red]invalid[/] {escape(str(file))} as [bold]{escape(message_type)}[/]: "
                          f"{len(errors)} error{'s' if len(errors) != 1 else ''}")
                for err in errors:
                    out.print(f"  [red]{escape(err['pointer'])}: {escape(err['message'])}[/]")
            else:
                out.print(f"[bold green]ok[/] {escape(str(file))} is a valid [bold]{escape(message_type)}[/]")
        if errors:
            raise typer.Exit(1)
