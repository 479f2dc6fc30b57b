"""Counters a component keeps on its own disk, so they survive its SIGKILLs within one run.

In the distributed profile every instance is its own OS process, and a SIGKILLed life writes no
summary: what it sent or applied would vanish from the run's counts. An :class:`Odometer` is a
small JSON file in the instance's data dir (``<plant>/.forge/processes/<instance>/``, kept across
its lives), rewritten atomically (write, fsync, rename) on every count, like a real machine's
non-volatile counter. It belongs to one *run*: the life of the parent process of a multi-process
plant (its pid and start time); a file left by another run is started over.

In a one-process plant nothing is written (the plant's ledger lives as long as the run): an
odometer without a path only counts in memory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_core import ComponentContext

FILE = "pasta-odometer.json"
#: times kept per counter (the latest), for "how many were counted after instant t"
KEEP_TIMES = 8


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot (Linux), '' elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22 of stat, counted after the command name


def run_id(parent: int | None = None) -> str:
    """The run a child process belongs to: its parent's pid and start time (the parent itself
    passes its own pid)."""
    pid = os.getppid() if parent is None else parent
    return f"{pid}:{_start_time(pid)}"


class Odometer:
    """Named counters, persisted at ``path`` (None: memory only) for the run ``run``."""

    def __init__(self, path: Path | None, run: str = "") -> None:
        self.path = path
        self.run = run
        self.counts: Counter[str] = Counter()
        #: the clock times of the latest counts, per counter (only those counted with ``at``)
        self.times: dict[str, list[float]] = {}
        self.lives = 1
        if path is not None:
            saved = read(path, run)
            if saved is not None:
                self.counts.update(saved["counts"])
                self.times = saved.get("times", {})
                self.lives = int(saved.get("lives", 0)) + 1
            self._write()

    def add(self, *names: str, at: float | None = None) -> None:
        """Count one of each of ``names`` (one write); ``at`` is kept as their latest time."""
        for name in names:
            self.counts[name] += 1
            if at is not None:
                self.times[name] = [*self.times.get(name, [])[-(KEEP_TIMES - 1):], at]
        self._write()

    def set_once(self, name: str, value: int) -> int:
        """``name``'s value, set to ``value`` if this run has none yet."""
        if name not in self.counts:
            self.counts[name] = value
            self._write()
        return self.counts[name]

    def view(self) -> dict[str, Any]:
        return {"lives": self.lives, "counts": dict(self.counts), "times": dict(self.times)}

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def _write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as out:
            json.dump({"run": self.run, **self.view()}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


def read(path: Path, run: str) -> dict[str, Any] | None:
    """What the odometer at ``path`` holds for run ``run`` (None: no file, or another run's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("run") != run or not isinstance(data.get("counts"), dict):
        return None
    return data


def odometer(ctx: ComponentContext, key: str) -> Odometer:
    """The odometer of instance ``key``: on its own disk when the instance is its own process (a
    child of a multi-process plant: ``--only``), else the one in the plant's ledger (the run's)."""
    from pasta_plant.ledger import ledger

    runtime = ctx.services.get("runtime")
    if runtime is not None and not runtime.whole_plant:
        return Odometer(Path(runtime.data_dir) / FILE, run_id())
    book = ledger(ctx).extra
    found = book.get(f"odometer:{key}")
    if not isinstance(found, Odometer):
        found = book[f"odometer:{key}"] = Odometer(None)
    return found
