"""What a long ``forge run`` shows while it runs: a progress bar for ``--simulate`` on a terminal,
the child processes' states for a distributed parent (a live table on a terminal, one line per change
on a pipe).

The simulation's bar is drawn from a wall-clock thread that only *reads* the virtual clock and the
trace's message count: nothing is scheduled on the virtual loop, so the run, its trace digest and
its timing are the same with the bar and without it (a pipe, CI, ``--json`` to a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from forge_core.cli.durations import format_duration

if TYPE_CHECKING:
    from forge_core.runtime.processes import ProcessRunner

#: Seconds of wall time between redraws (rich redraws at most this often anyway).
REFRESH = 0.2


def wall(seconds: float) -> str:
    """``75.3`` -> ``0:01:15``: wall time the way a stopwatch shows it."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@contextlib.contextmanager
def simulation_progress(out: Console, total: float, elapsed: Callable[[], float],
                        messages: Callable[[], int], *, enabled: bool = True) -> Iterator[Progress | None]:
    """A bar of simulated time out of ``total`` seconds, with the messages so far and the wall time,
    while the body runs; nothing when ``out`` is not a terminal (a pipe or a file gets no bar
    and no control codes) or not ``enabled``."""
    if not out.is_terminal or not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]simulated[/] {task.fields[simulated]} of {task.fields[span]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[messages]} messages"),
        TextColumn("wall {task.fields[wall]}"),
        console=out, transient=True, refresh_per_second=1 / REFRESH,
    )
    start = time.monotonic()
    task = progress.add_task("simulate", total=total, simulated=format_duration(0), span=format_duration(total),
                             messages=0, wall=wall(0))
    done = threading.Event()

    def update() -> None:
        now = min(max(elapsed(), 0.0), total)
        progress.update(task, completed=now, simulated=format_duration(round(now)),
                        messages=f"{messages():,}", wall=wall(time.monotonic() - start))

    def poll() -> None:
        while not done.wait(REFRESH):
            with contextlib.suppress(Exception):  # a read racing the loop must not end the run
                update()

    thread = threading.Thread(target=poll, name="forge-progress", daemon=True)
    with progress:
        thread.start()
        try:
            yield progress
        finally:
            done.set()
            thread.join()


def child_states(runner: ProcessRunner) -> dict[str, str]:
    """``{instance: "running (pid 123)"}`` for every child: what the parent shows while it waits."""
    states = {}
    for name, child in runner.children.items():
        pid = child.pid
        extra = [f"pid {pid}"] if pid else []
        if child.restarts:
            extra.append(f"{child.restarts} restart{'s' if child.restarts != 1 else ''}")
        if child.kills:
            extra.append(f"{child.kills} kill{'s' if child.kills != 1 else ''}")
        states[name] = child.status + (f" ({', '.join(extra)})" if extra else "")
    return states


async def watch_children(runner: ProcessRunner, out: Console, every: float = 0.5) -> None:
    """Until cancelled: on a terminal a live table of the children's states; elsewhere one line per
    change (``machine-1: killed (pid 123, 1 kill)``), so a distributed run is never a silent minute."""
    if out.is_terminal:
        from rich.live import Live
        from rich.table import Table

        def table() -> Table:
            grid = Table(title="child processes", title_justify="left", show_edge=False)
            grid.add_column("instance")
            grid.add_column("state")
            for name, state in child_states(runner).items():
                colour = "green" if state.startswith("running") else "red" if state.startswith("failed") else "yellow"
                grid.add_row(escape(name), f"[{colour}]{escape(state)}[/]")
            return grid

        with Live(table(), console=out, transient=True, refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(every)
                live.update(table())
    seen: dict[str, str] = {}
    while True:
        for name, state in child_states(runner).items():
            if seen.get(name) != state:  # a new state, pid (a new life) or count
                out.print(f"  {escape(name)}: {escape(state)}")
                seen[name] = state
        await asyncio.sleep(every)
