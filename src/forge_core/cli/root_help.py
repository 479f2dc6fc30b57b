"""``forge --help``: usage, options and the commands by panel, drawn with rich's console and table.

Not typer's ``rich_utils``: that module imports rich's markdown (markdown-it), traceback and
pretty-printing, 90-140 ms of the 0.5 s start-up budget (issue 17, ``benchmarks/bench_startup.py``)
for a page that uses none of them. The CLI imports rich's console and table anyway. A command's
own help (``forge run --help``) stays typer's, which loads that module only then.
"""

from __future__ import annotations

import os
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

#: the panel of a command that names none (typer's default)
COMMANDS_PANEL = "Commands"


def _console() -> Console:
    width = os.environ.get("TERMINAL_WIDTH")  # typer's setting for its help's width; else the terminal's
    return Console(highlight=False, width=int(width) if width and width.isdigit() else None)


def first_paragraph(text: str | None) -> str:
    """A help text's first paragraph on one line (a docstring's hard wraps are not the reader's)."""
    return " ".join((text or "").strip().split("\n\n", 1)[0].split())


def _panel(title: str, table: Table) -> Panel:
    return Panel(table, title=title, title_align="left", border_style="dim", box=box.ROUNDED)


def _options_table(group: Any, ctx: Any) -> Table:
    table = Table.grid(padding=(0, 1), expand=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(style="bold green", no_wrap=True)
    table.add_column(ratio=1)
    for param in group.get_params(ctx):
        if getattr(param, "param_type_name", None) != "option" or param.hidden:  # typer's click is vendored
            continue
        names = [*param.opts, *param.secondary_opts]
        long = ", ".join(n for n in names if n.startswith("--"))
        short = ", ".join(n for n in names if not n.startswith("--"))
        text = Text(first_paragraph(param.help))
        if param.show_default and not param.is_flag and param.default not in (None, ""):
            text.append(f" [default: {param.default}]", style="dim")
        table.add_row(long, short, text)
    return table


def _command_tables(group: Any, ctx: Any) -> dict[str, Table]:
    panels: dict[str, Table] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)  # a plugin's lazy group is not imported to list it
        if command is None or command.hidden:
            continue
        panel = getattr(command, "rich_help_panel", None) or COMMANDS_PANEL
        if panel not in panels:
            panels[panel] = Table.grid(padding=(0, 2), expand=False)
            panels[panel].add_column(style="bold cyan", no_wrap=True)
            panels[panel].add_column(ratio=1)
        panels[panel].add_row(name, first_paragraph(command.short_help or command.help))
    return panels


def print_root_help(group: Any, ctx: Any) -> None:
    """Print the root group's help (a typer group and its click context) to stdout, in typer's layout."""
    console = _console()
    console.print()
    console.print(Text(" ") + Text(group.get_usage(ctx), style="bold"))
    console.print()
    if group.help:
        console.print(Text(" " + first_paragraph(group.help)))
        console.print()
    console.print(_panel("Options", _options_table(group, ctx)))
    panels = _command_tables(group, ctx)
    for title in sorted(panels, key=lambda t: t != COMMANDS_PANEL):  # the core's first, then the plugins'
        console.print(_panel(title, panels[title]))
