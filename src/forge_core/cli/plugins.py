"""``forge plugins``: what is installed, where it comes from and what each plugin provides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from forge_core.cli.output import console, print_json

if TYPE_CHECKING:
    from forge_core.cli.main import CliState
    from forge_core.plugins import Plugins


def describe(plugins: Plugins) -> list[dict[str, Any]]:
    """One dict per plugin: identity, hooks it implements and names it registered."""
    plugins.collect()
    commands = plugins.collect_commands()
    drills = plugins.collect_drills()
    rows = []
    for info in plugins.infos.values():
        provides = {kind: names for kind, names in info.provides.items() if names}
        cli = commands.by_plugin(info.name)
        if cli:
            provides["commands"] = cli
        if drills.by_plugin(info.name):
            provides["drills"] = drills.by_plugin(info.name)
        rows.append({
            "name": info.name,
            "version": info.version,
            "distribution": info.distribution,
            "module": info.module,
            "kind": "builtin" if info.builtin else "local" if info.local_path else "installed",
            "local_path": info.local_path,
            "hooks": info.hooks(plugins.pm),
            "provides": provides,
        })
    return rows


def register(app: typer.Typer, state: CliState) -> None:
    @app.command("plugins")
    def plugins_command(
        json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    ) -> None:
        """List installed plugins: name, version, distribution, hooks and what each registers.

        Limit what loads with FORGE_LOAD_PLUGINS / FORGE_DISABLE_PLUGINS (comma-separated names).
        """
        rows = describe(state.plugins)
        if json_out:
            print_json(rows)
            return
        table = Table(title="forge plugins", title_justify="left")
        for column in ("name", "version", "distribution", "kind", "hooks", "provides"):
            table.add_column(column, overflow="fold")
        for row in rows:
            provides = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in row["provides"].items())
            hooks = "\n".join(h.removeprefix("forge_") for h in row["hooks"])
            table.add_row(escape(row["name"]), row["version"] or "-", escape(row["distribution"] or "-"), row["kind"],
                          hooks or "-", escape(provides) or "-")
        console().print(table)
