"""``forge drill``: run one of a plant's failure drills and print its report.

The scenarios come from the plant's plugins (``forge_register_drills``). A drill starts what the
plant needs, injects its fault, heals it and measures; the report is a table of figures, each
with what it should be. Exit code 1 when a figure failed or the drill could not finish.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from forge_core.cli.output import PLANT_PATH_HELP, console, print_json
from forge_core.drills import DrillOptions, DrillReport, DrillScenario, parse_seconds
from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.cli.main import CliState
    from forge_core.manifest import Manifest
    from forge_core.registry import DrillRegistry


def _describe(entry_name: str, scenario: DrillScenario, plugin: str | None) -> dict[str, Any]:
    return {"name": entry_name, "description": scenario.description, "plugin": plugin,
            "profile": scenario.profile, "phases": dict(scenario.phases)}


def _no_drills(manifest: Manifest) -> ForgeError:
    plugins = ", ".join(manifest.plugins or []) or "none listed"
    return ForgeError(f"plant {manifest.name!r} ({manifest.path}) has no failure drills: none of its plugins "
                      f"({plugins}) or local plugins implements forge_register_drills")


def _choose(drills: DrillRegistry, manifest: Manifest, scenario: str | None) -> DrillScenario:
    known = ", ".join(drills.names())
    if scenario is None:
        raise ForgeError(f"name a drill of plant {manifest.name!r} ({known}), or list them with --list")
    if scenario not in drills:
        raise ForgeError(f"plant {manifest.name!r} has no drill {scenario!r}; its drills: {known} "
                         f"(`forge drill {manifest.plant_dir} --list` describes them)")
    return drills.get(scenario).value


def _print_list(drills: DrillRegistry, manifest: Manifest) -> None:
    table = Table(title=f"drills of plant {manifest.name}", title_justify="left")
    for column in ("drill", "description", "phases (s)", "profile", "plugin"):
        table.add_column(column, overflow="fold")
    for entry in drills:
        phases = ", ".join(f"{k}={v:g}" for k, v in entry.value.phases.items())
        table.add_row(escape(entry.name), escape(entry.description), phases or "-", escape(entry.value.profile or "-"),
                      escape(entry.plugin or "-"))
    console().print(table)


def print_report(report: DrillReport) -> None:
    """The report as a table, the verdict coloured."""
    out = console()
    verdict = "[bold green]passed[/]" if report.passed else "[bold red]FAILED[/]"
    out.print(f"[bold]drill {escape(report.scenario)}[/] on {escape(report.plant)}: {verdict}")
    if report.timeline:
        out.print("timeline:")
        for at, what in report.timeline:
            out.print(f"  {at:7.1f}s  {escape(what)}")
    table = Table(title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("expected")
    table.add_column("")
    for figure in report.figures:
        shown = _value(figure.value, figure.unit)
        expect = f"{figure.expect} {figure.unit}".strip() if figure.expect else ""
        colour = "green" if figure.ok else "red" if figure.ok is False else "dim"
        table.add_row(escape(figure.name), escape(shown), escape(expect), f"[{colour}]{figure.verdict}[/]")
    out.print(table)
    for figure in report.figures:
        if figure.note:
            out.print(f"  [dim]* {escape(figure.name)}: {escape(figure.note)}[/]")
    if report.error:
        out.print(f"[bold red]error:[/] [red]{escape(report.error)}[/]")


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def register(app: typer.Typer, state: CliState) -> None:
    @app.command()
    def drill(
        path: Annotated[Path, typer.Argument(metavar="PLANT", help=PLANT_PATH_HELP)],
        scenario: Annotated[str | None, typer.Argument(metavar="SCENARIO", help="The drill to run.")] = None,
        list_: Annotated[bool, typer.Option("--list", help="List the plant's drills and exit.")] = False,
        profile: Annotated[str | None, typer.Option(
            "--profile", "-p", metavar="PROFILE",
            help="Run the plant in this manifest profile (default: the drill's own, see --list).")] = None,
        seconds: Annotated[list[str] | None, typer.Option(
            "--seconds", metavar="[PHASE=]N",
            help="Length of one of the drill's phases (repeatable; a bare N is the fault phase).")] = None,
        work_dir: Annotated[Path | None, typer.Option(
            "--work-dir", metavar="DIR",
            help="Keep the servers' and the plant's files (logs, data) here instead of a temp dir.")] = None,
        json_out: Annotated[bool, typer.Option(
            "--json", help="Print the report (or the list) as JSON on stdout; progress goes to stderr.")] = False,
    ) -> None:
        """Run one of a plant's failure drills and print its report.

        The drill starts what the plant needs, injects its fault, heals it, stops the plant and
        measures: each figure of the report says what it should be. Exit code 1 when a figure
        failed or the drill could not finish. The drills come from the plant's plugins
        (forge_register_drills).
        """
        from forge_core.cli.validate import require_manifest
        from forge_core.plant import load_plant

        plugins, manifest = load_plant(require_manifest(path), profile=profile, plugins=state.fresh())
        drills = plugins.collect_drills()
        if not len(drills):
            raise _no_drills(manifest)
        if list_:
            if json_out:
                print_json([_describe(e.name, e.value, e.plugin) for e in drills])
            else:
                _print_list(drills, manifest)
            return
        chosen = _choose(drills, manifest, scenario)
        options = DrillOptions(profile=profile, seconds=parse_seconds(seconds or [], chosen),
                               work_dir=work_dir.resolve() if work_dir else None)
        console(stderr=True).print(f"[bold]drill {escape(chosen.name)}[/] on plant {escape(manifest.name)}: "
                                   f"{escape(chosen.description)}")
        report = chosen.run(manifest.plant_dir, options)
        if json_out:
            print_json(report.to_dict())
        else:
            print_report(report)
        if not report.passed:
            raise typer.Exit(1)
