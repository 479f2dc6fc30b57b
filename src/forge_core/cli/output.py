"""Printing for the CLI: rich for people on a terminal, plain JSON for machines.

Human text goes to stdout unless a command prints JSON there, in which case everything else
goes to stderr, so ``forge ... --json | jq`` always reads one clean document.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from forge_core.cli import readable
from forge_core.cli.durations import format_duration
from forge_core.errors import ManifestProblem
from forge_core.runtime.summary import NOT_RUN, Check, RunSummary

if TYPE_CHECKING:
    from forge_core.clock import Clock

PLANT_PATH_HELP = "The plant directory (holding plant.yaml) or the manifest file."


def console(*, stderr: bool = False) -> Console:
    """A console bound to the *current* sys.stdout/stderr (typer's CliRunner swaps them)."""
    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal rich assumes 80 columns; tables then wrap badly in logs and CI. COLUMNS wins.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    # emoji=False: a report key "received:100:" must not print as "received💯"
    return Console(file=stream, highlight=False, soft_wrap=True, width=width, emoji=False)


def log_to_stderr(verbose: int, *, clock: Clock | None = None) -> Callable[[], None]:
    """Logs on stderr through rich from now until the returned function is called: warnings and
    errors always, ``-v`` info, ``-vv`` debug. Times are ISO 8601 UTC, the reports' format; with a
    virtual ``clock`` they are plant time (the wall time has nothing to do with a simulated plant)."""
    import logging
    from datetime import datetime

    from rich.logging import RichHandler

    from forge_core.runtime.summary import iso_time

    def when(at: datetime) -> Text:
        return Text(iso_time(clock.time() if clock is not None else at.timestamp()), style="log.time")

    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RichHandler(console=console(stderr=True), show_path=False, log_time_format=when,
                          omit_repeated_times=False, rich_tracebacks=False, level=level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(level, previous) if previous != logging.NOTSET else level)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    return undo


def print_json(data: Any) -> None:
    """One JSON document on stdout; non-JSON values (paths, sets) become strings."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    return str(value)


def error(message: str) -> None:
    """A deliberate error: its message in red on stderr, no traceback."""
    console(stderr=True).print(f"[bold red]error:[/] [red]{escape(message)}[/]")


def problem_dict(problem: ManifestProblem) -> dict[str, Any]:
    return {"file": problem.file, "line": problem.line, "path": problem.path, "message": problem.message}


def print_problems(problems: list[ManifestProblem]) -> None:
    out = console()
    count = len(problems)
    out.print(f"[bold red]{count} problem{'s' if count != 1 else ''}[/]")
    for problem in problems:
        out.print(f"[red]{escape(str(problem))}[/]")


def component_count(components: int, instances: int) -> str:
    """``7 components (10 instances)``: how ``validate`` and ``run`` count, the same way (a
    component with ``replicas: 3`` is one component, three instances; the run's tables list instances)."""
    text = f"{components} component{'s' if components != 1 else ''}"
    return text if instances == components else f"{text} ({instances} instance{'s' if instances != 1 else ''})"


def verdict_text(summary: RunSummary) -> str:
    """The verdict line, coloured: green when every check passed and no component failed."""
    ok = summary.checks_passed and not summary.failed
    return f"[bold {'green' if ok else 'red'}]{escape(summary.verdict)}[/]"


def summary_table(summary: RunSummary) -> list[RenderableType]:
    """The end-of-run report, ordered for a person: the verdict, the checks, then the details
    (the run, components, messages, dead letters, each component's report); the verdict again last."""
    tables: list[RenderableType] = [Text.from_markup(verdict_text(summary))]
    if summary.checks:
        tables.append(_checks_table(summary))
    tables.append(_run_table(summary))
    tables.append(_components_table(summary))

    messages = Table(title="messages", title_justify="left")
    messages.add_column("type")
    messages.add_column("published", justify="right")
    messages.add_column("handled", justify="right")
    for type_ in sorted(set(summary.published) | set(summary.handled)):
        messages.add_row(escape(type_), str(summary.published.get(type_, 0)), str(summary.handled.get(type_, 0)))
    if not summary.published and not summary.handled:
        messages.add_row("[dim](none)[/]", "0", "0")
    tables.append(messages)

    if summary.dead_letters:
        letters = Table(title="dead letters", title_justify="left")
        letters.add_column("reason")
        letters.add_column("count", justify="right")
        for reason, count in summary.dead_letters.items():
            letters.add_row(f"[red]{escape(reason)}[/]", str(count))
        tables.append(letters)
    if summary.extra.get("processes"):
        tables.append(_processes_table(summary.extra["processes"]))
    accounting = summary.extra.get("dead_letters")
    if accounting and accounting.get("total"):
        tables.append(_accounting_table(accounting))

    for component, report in summary.reports.items():
        section = Table(title=f"report: {escape(component)}", title_justify="left", show_header=False)
        section.add_column("key", style="bold")
        section.add_column("value")
        for key, value in report.items():
            section.add_row(escape(str(key)), readable.cell(value, str(key)))
        tables.append(section)
    for component in summary.unreported:
        tables.append(Text.from_markup(f"[bold]report: {escape(component)}[/] [yellow]none: killed when the run "
                                       "ended (a killed instance leaves no report)[/]"))
    tables.append(Text.from_markup(verdict_text(summary)))
    return tables


def _checks_table(summary: RunSummary) -> Table:
    """Failed checks first, then those that passed, then those that never ran."""
    def rank(check: Check) -> int:
        return 2 if check.detail.startswith(NOT_RUN) else 1 if check.passed else 0

    checks = Table(title="invariant checks", title_justify="left")
    checks.add_column("check")
    checks.add_column("component")
    checks.add_column("result")
    checks.add_column("detail")
    for check in sorted(summary.checks, key=rank):
        if check.detail.startswith(NOT_RUN):
            result = "[yellow]not run[/]"  # its instance was killed before it could report
        else:
            result = "[green]pass[/]" if check.passed else "[bold red]FAIL[/]"
        checks.add_row(escape(check.name), escape(check.component), result, escape(check.detail))
    return checks


def _components_table(summary: RunSummary) -> Table:
    """State, restarts after a crash and kills per instance; a kill then a revive is a restart too, so
    the total row adds up to what a chaos component counted."""
    components = Table(title="components", title_justify="left")
    components.add_column("component")
    components.add_column("state")
    components.add_column("restarts", justify="right")
    killed = bool(summary.kills)
    if killed:
        components.add_column("kills", justify="right")
        components.caption = "restarts: after a crash, or a revive after a kill"
        components.caption_justify = "left"
    restarts_total = kills_total = 0
    for name, state in summary.components.items():
        colour = "red" if state in ("failed", "crashed") else "green" if state in ("stopped", "running") else "yellow"
        kills = summary.kills.get(name, 0)
        revived = kills - (1 if state == "killed" and kills else 0)  # still down at the end: not restarted
        restarts = summary.restarts.get(name, 0) + revived
        restarts_total += restarts
        kills_total += kills
        components.add_row(escape(name), f"[{colour}]{state}[/]", str(restarts), *([str(kills)] if killed else []))
    if killed:
        components.add_section()
        components.add_row(f"[bold]{len(summary.components)} instances[/]", "", str(restarts_total), str(kills_total))
    return components


def _run_table(summary: RunSummary) -> Table:
    run = Table(title="run", title_justify="left", show_header=False)
    run.add_column("key", style="bold")
    run.add_column("value")
    run.add_row("plant", escape(summary.plant + (f" (profile {summary.profile})" if summary.profile else "")))
    run.add_row("clock", summary.clock + (f", seed {summary.seed}" if summary.seed is not None else ""))
    wall = format_duration(round(summary.wall_seconds, 1))
    run.add_row("duration", f"{format_duration(summary.duration)} (wall {wall})")
    run.add_row("messages", f"{summary.total_published} published, {summary.total_dead_letters} dead letters")
    if summary.forwarded:
        run.add_row("forwarded", str(summary.forwarded))
    if summary.trace_digest:
        run.add_row("trace digest", f"{summary.trace_digest} ({summary.trace_messages} messages)")
    run.add_row("stop reason", escape(_stop_reason(summary.stop_reason)))
    return run


def _processes_table(processes: dict[str, dict[str, Any]]) -> Table:
    """A distributed run's OS processes: one row per instance, its lives and how each ended."""
    table = Table(title="processes", title_justify="left")
    for column in ("instance", "lives", "kills", "crash restarts", "pids", "exits", "last error", "log"):
        table.add_column(column, justify="right" if column in ("lives", "kills", "crash restarts") else "left",
                         overflow="fold")
    for name, p in processes.items():
        exits = ", ".join(_exit(code) for code in p.get("exit_codes") or []) or "-"
        table.add_row(escape(name), str(p.get("lives", 0)), str(p.get("kills", 0)), str(p.get("crash_restarts", 0)),
                      ", ".join(map(str, p.get("pids") or [])) or "-", exits,
                      escape(p.get("last_error") or "-"), escape(str(p.get("log", "-"))))
    return table


def _exit(code: int | None) -> str:
    """An exit code as a person reads it: ``0``, ``1``, ``SIGKILL`` (-9), ``running`` (None)."""
    if code is None:
        return "running"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return str(code)
    return str(code)


def _stop_reason(reason: str) -> str:
    """``duration 86400s reached`` -> ``duration 1d reached``: durations read as the CLI takes them."""
    found = re.fullmatch(r"duration ([0-9.]+)s reached", reason)
    return f"duration {format_duration(float(found[1]))} reached" if found else reason or "-"


def _accounting_table(a: dict[str, Any]) -> Table:
    """Where every dead letter went (summed over the processes of a distributed run)."""
    table = Table(title="dead-letter accounting", title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("total", f"{a['total']} = {a.get('quarantined', 0)} quarantined + {a.get('offered', 0)} offered")
    if "recorded" in a:
        drops = ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in a.items() if k.startswith("dropped_") and v)
        table.add_row("offered", f"{a['recorded']} recorded + {a['dropped']} dropped" + (f" ({drops})" if drops else "")
                      + f" + {a['pending']} pending")
    table.add_row("published", f"{a.get('published', 0)} (not published over the rate: {a.get('not_published', 0)})")
    by_process = a.get("by_process")
    if by_process:
        table.add_row("by process", ", ".join(f"{p} {n}" for p, n in by_process.items() if n) or "-")
    if a.get("lives_without_summary"):
        table.add_row("not counted", f"{a['lives_without_summary']} killed lives wrote no summary")
    return table


def print_summary(summary: RunSummary, *, stderr: bool = False) -> None:
    out = console(stderr=stderr)
    for table in summary_table(summary):
        out.print(table)
