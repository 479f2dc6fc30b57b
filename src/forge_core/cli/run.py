"""``forge run``: one plant process on the real clock, or a whole simulated run in virtual time.

asyncio, the clocks and the progress bars are imported inside the command: ``forge --help`` imports
this module to list ``run`` and should not pay for them (docs/performance.md, start-up).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from forge_core.cli.durations import duration_option, format_duration
from forge_core.cli.output import (
    PLANT_PATH_HELP,
    component_count,
    console,
    log_to_stderr,
    print_json,
    print_summary,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from rich.console import Console

    from forge_core.cli.main import CliState
    from forge_core.manifest.metrics import MetricsSettings
    from forge_core.runtime.processes import ProcessRunner
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary


def metrics_option(current: MetricsSettings, value: str) -> MetricsSettings:
    """``--metrics [HOST:]PORT`` / ``off`` applied to ``runtime.metrics`` (checked by the same model)."""
    from forge_core.errors import SettingsError

    if value.strip().lower() == "off":
        return current.model_copy(update={"enabled": False})
    try:
        return type(current).load({**current.as_dict(), "enabled": True, "listen": value}, where="--metrics")
    except SettingsError as exc:
        raise typer.BadParameter(f"expected [HOST:]PORT or off, got {value!r}", param_hint="--metrics") from exc


def serving_lines(runtime: Runtime) -> list[str]:
    """Where the components' APIs answer: the HTTP mounts and gRPC services, once they listen."""
    lines = []
    if runtime.http is not None and runtime.http.url:
        mounts = ", ".join(f"{prefix} ({owner})" for prefix, owner in runtime.http.mounts().items())
        served = "/health, /ready" + (", /metrics" if runtime.metrics is not None else "")
        lines.append(f"  HTTP on {runtime.http.url}: {escape(mounts)}{'; ' if mounts else ''}{served}")
    if runtime.grpc is not None and runtime.grpc.target:
        services = ", ".join(f"{name} ({owner})" for name, owner in runtime.grpc.services().items())
        lines.append(f"  gRPC on {runtime.grpc.target}: {escape(services)}; health and reflection")
    return lines

async def _watched(runner: ProcessRunner, duration: float | None, spawned: Callable[[ProcessRunner], None],
                   out: Console) -> RunSummary:
    """The distributed parent's run, showing its children's states while it waits (and stops)."""
    import asyncio

    from forge_core.cli.progress import watch_children
    from forge_core.runtime.signals import run_until_signalled

    watcher: asyncio.Task[None] | None = None

    def started(r: ProcessRunner) -> None:
        nonlocal watcher
        spawned(r)
        watcher = asyncio.ensure_future(watch_children(r, out))

    try:
        return await run_until_signalled(runner, duration, on_started=started)
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


def register(app: typer.Typer, state: CliState) -> None:
    @app.command()
    def run(
        path: Annotated[Path, typer.Argument(metavar="PATH", help=PLANT_PATH_HELP)],
        profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="PROFILE",
                                                       help="Apply this manifest profile.")] = None,
        only: Annotated[list[str] | None, typer.Option(
            "--only", metavar="NAME[,NAME]",
            help="Run only these components or groups (comma-separated or repeated): one process of a "
                 "distributed plant.")] = None,
        duration: Annotated[float | None, typer.Option(
            "--duration", "-d", parser=duration_option, metavar="DURATION",
            help="Stop after this long on the real clock: 30s, 90m, 24h, 1d, 1h30m, 0.5s.")] = None,
        simulate: Annotated[float | None, typer.Option(
            "--simulate", parser=duration_option, metavar="DURATION",
            help="Run this long in virtual time (a plant day takes seconds) and print the trace digest.")] = None,
        seed: Annotated[int | None, typer.Option(
            "--seed", metavar="N", help="Seed of every component's random stream; default 0 with --simulate.")] = None,
        health_port: Annotated[int | None, typer.Option(
            "--health-port", min=0, max=65535, metavar="PORT",
            help="Serve /health and /ready on this port (0: any free port); overrides runtime.health.port.")] = None,
        json_out: Annotated[bool, typer.Option(
            "--json", help="Print the summary as JSON on stdout (everything else goes to stderr).")] = False,
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                             help="Log more (-v info, -vv debug).")] = 0,
        chaos: Annotated[bool, typer.Option(
            "--chaos", help="Shorthand for --profile chaos (a plant's chaos experiment).")] = False,
        data_dir: Annotated[Path | None, typer.Option(
            "--data-dir", metavar="DIR",
            help="Durable files of this process (outboxes, MQTT session numbers); default PATH/.forge. "
                 "Processes of one plant on one host need one each. A --simulate run keeps its whole state "
                 "(database, plant files) in DIR/simulation, emptied at its start.")] = None,
        dashboard: Annotated[str | None, typer.Option(
            "--dashboard", envvar="FORGE_DASHBOARD", metavar="[HOST:]PORT",
            help="Serve the web dashboard on this port (0: any free port; 'off': none); overrides "
                 "settings.dashboard, which turns it on in the embedded profile (docs/dashboard.md).")] = None,
        metrics: Annotated[str | None, typer.Option(
            "--metrics", envvar="FORGE_METRICS", metavar="[HOST:]PORT",
            help="Serve Prometheus /metrics on the runtime's HTTP server at this address from the start (0: any "
                 "free port; 'off': no /metrics); sets runtime.metrics.listen (docs/metrics.md).")] = None,
    ) -> None:
        """Run a plant until Ctrl-C / SIGTERM, --duration, or the end of a --simulate run.

        Prints a summary at the end (components, messages per type, dead letters). The exit
        code is 1 when a component ended failed. With ``runtime.processes: per_component`` (and no
        --only, no --simulate) every component instance runs in its own OS process, supervised here.
        """
        import asyncio

        from forge_core.builtin.logger import MessageLogger
        from forge_core.cli.progress import simulation_progress
        from forge_core.cli.serve_dashboard import children_serve_their_own, resolve, run_with_dashboard
        from forge_core.cli.validate import require_manifest
        from forge_core.clock import RealClock, VirtualClock
        from forge_core.plant import load_plant
        from forge_core.runtime.processes import ProcessRunner
        from forge_core.runtime.runtime import Runtime
        from forge_core.runtime.signals import run_until_signalled

        if simulate is not None and duration is not None:
            raise typer.BadParameter("give either --duration (real clock) or --simulate (virtual time), not both",
                                     param_hint="--duration/--simulate")
        if chaos:
            if profile not in (None, "chaos"):
                raise typer.BadParameter(f"--chaos is --profile chaos; it cannot be combined with --profile {profile} "
                                         "(write a profile that has both)", param_hint="--chaos")
            profile = "chaos"
        plugins, manifest = load_plant(require_manifest(path), profile=profile, plugins=state.fresh())
        if health_port is not None:
            manifest.runtime.health_port = health_port
        if metrics is not None:
            manifest.runtime.metrics = metrics_option(manifest.runtime.metrics, metrics)
        board = resolve(manifest, dashboard, simulate=simulate is not None)
        info = console(stderr=json_out)
        clock = VirtualClock() if simulate is not None else None
        stop_logging = log_to_stderr(max(verbose, state.verbose), clock=clock)
        previous_stream = MessageLogger.stream
        if json_out:
            MessageLogger.stream = sys.stderr  # keep stdout for the one JSON document
        try:
            if clock is not None and simulate is not None:
                from forge_core.cli.simulation import fresh_state

                state_dir = fresh_state(manifest, data_dir)  # reproducible: never an earlier run's state
                runtime = Runtime(manifest, plugins, clock=clock, seed=seed if seed is not None else 0, only=only,
                                  record_trace=True)
                info.print(f"[bold]simulating[/] plant {escape(manifest.name)} for {format_duration(simulate)} "
                           f"of virtual time, seed {runtime.seed}; fresh state in {escape(state_dir.shown)}")
                if state_dir.note:
                    info.print(f"[yellow]note[/]: {escape(state_dir.note)}")
                trace = runtime.trace
                try:
                    # no bar beside a forge.logger: its lines are the progress, and each line printed
                    # above a live bar redraws it (3 ms a line measured: minutes over a simulated day)
                    printing = any(spec.type == "forge.logger" for spec in manifest.components.values())
                    with simulation_progress(info, simulate, lambda: clock.elapsed,
                                             lambda: trace.count if trace is not None else 0, enabled=not printing):
                        summary = clock.run(runtime.run(simulate))
                finally:
                    clock.close()
            elif manifest.runtime.processes == "per_component" and not only:
                with children_serve_their_own(board):  # each child serves its own; the parent links them
                    runner = ProcessRunner(manifest, plugins, plant_path=path, profile=profile, seed=seed)

                def spawned(r: ProcessRunner) -> None:
                    until = f" for {format_duration(duration)}" if duration else " until Ctrl-C"
                    info.print(f"[bold green]running[/] plant {escape(manifest.name)} as {len(r.children)} "
                               f"processes{until}: " + ", ".join(f"{c.name} (pid {c.pid})" for c in r.children.values())
                               + f"; logs in {r.run_dir}")

                summary = asyncio.run(_watched(runner, duration, spawned, info) if board is None else
                                      run_with_dashboard(lambda on: _watched(runner, duration, on, info), spawned,
                                                         board, info, children_dir=runner.run_dir))
            else:
                runtime = Runtime(manifest, plugins, clock=RealClock(), seed=seed, only=only, data_dir=data_dir)

                def started(rt: Runtime) -> None:
                    where = f" — health on {rt.health_server.url}/health" if rt.health_server else ""
                    until = f" for {format_duration(duration)}" if duration else " until Ctrl-C"
                    info.print(f"[bold green]running[/] plant {escape(manifest.name)} "
                               f"({component_count(len(rt.only), len(rt.supervisors))}){until}{where}")
                    for line in serving_lines(rt):
                        info.print(line)

                summary = asyncio.run(
                    run_until_signalled(runtime, duration, on_started=started) if board is None else
                    run_with_dashboard(lambda on: run_until_signalled(runtime, duration, on_started=on), started,
                                       board, info))
        finally:
            MessageLogger.stream = previous_stream
            stop_logging()
        if json_out:
            print_json(summary.to_dict())
        else:
            print_summary(summary)
        if summary.failed or not summary.checks_passed:
            raise typer.Exit(1)
