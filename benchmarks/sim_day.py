"""A plant's simulated run on the virtual clock, timed: what every ``bench_*_sim.py`` measures.

Each benchmark derives its plant's manifest into a temporary directory (a fresh database each run)
and hands it here; the helper runs it as ``forge run --simulate`` does, with the trace recorded so
the digest can be compared run to run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forge_core import VirtualClock, compiled
from forge_core.runtime import Runtime, load_plant


class Traced:
    """The fields of an Envelope the trace records, one object reused for every message (the floors' lines
    go through the run's own TraceRecorder)."""

    __slots__ = ("id", "key", "payload", "source", "time", "type")

    def __init__(self, type_: str, source: str) -> None:
        self.type, self.source = type_, source
        self.time, self.id, self.key, self.payload = 0.0, "", None, None


def simulate(derive: Callable[[Path], Path], name: str, seconds: float, seed: int,
             profile: str | None = None) -> tuple[float, float, Any]:
    """(wall s, CPU s, run summary) of ``seconds`` of plant time of the plant ``derive`` writes into
    ``<tmp>/<name>``, under ``profile``, seeded ``seed``; start-up and loading not counted."""
    with tempfile.TemporaryDirectory() as tmp:
        plugins, manifest = load_plant(derive(Path(tmp) / name), profile=profile)
        clock = VirtualClock()
        runtime = Runtime(manifest, plugins, clock=clock, seed=seed, record_trace=True, serve_health=False)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            summary = clock.run(runtime.run(seconds))
        finally:
            clock.close()
        return time.perf_counter() - start, time.process_time() - cpu, summary


def day_main(doc: str, *, example: str, derive: Callable[[Path], Path], name: str,
             timers: list[tuple[float, int]], profile: str | None = "chaos", setting: str = "",
             details: Callable[[Any], list[str]] = lambda summary: [], target: float = 10.0,
             design_floor: Callable[[float, int], float] | None = None) -> None:
    """The command line every ``bench_*_sim.py`` shares: ``--hours``, ``--seed``, ``--twice`` (and
    ``--no-chaos`` where ``profile`` is ``chaos``); prints the run's wall and CPU time beside the
    ``target`` (s for 24 simulated hours) and the bare timers' floor, the checks, the digest, and the
    plant's own ``details`` lines. ``setting`` describes the run in the heading (default: the profile).
    ``design_floor(seconds, seed)``: the CPU s of the plant's own work done without Forge (a plant's
    ``bench_*_floor.py``), printed beside the plant's (``--no-floor`` skips it too)."""
    from timer_floor import bare  # benchmarks/ is on sys.path when run as a script

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    if profile == "chaos":
        parser.add_argument("--no-chaos", action="store_true", help="the plant's default profile instead")
    parser.add_argument("--twice", action="store_true",
                        help="run again with the same seed and compare digests and checks")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the bare timers' run (an instruction count of the plant alone: the floor's run "
                             "is ~17 %% of industry40's hour under cachegrind)")
    args = parser.parse_args()
    if getattr(args, "no_chaos", False):
        profile = None
    seconds = args.hours * 3600
    load = os.getloadavg()[0]
    what_runs = compiled.describe()  # "pure Python" or "compiled: N modules (mypyc)" (docs/compiled.md)
    wall, cpu, summary = simulate(derive, name, seconds, args.seed, profile)
    floor, wakeups = (0.0, 0) if args.no_floor else bare(timers, seconds)
    work = 0.0 if args.no_floor or design_floor is None else design_floor(seconds, args.seed)
    failed = [c for c in summary.checks if not c.passed]
    per_day = target * args.hours / 24
    print(f"simulated {args.hours:g} h of examples/{example} ({setting or f'profile {profile}'}, seed {args.seed}); "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores; {what_runs}")
    print(f"  plant:       {wall:7.2f} s wall ({wall / args.hours:.2f} s per simulated hour), {cpu:7.2f} s CPU "
          f"({cpu / args.hours:.2f} s/h)   {summary.total_published:>8} messages")
    for line in details(summary):
        print(f"  {line}")
    print(f"  checks {len(summary.checks) - len(failed)}/{len(summary.checks)} passed   "
          f"digest {summary.trace_digest[:16]}")
    if floor:
        print(f"  bare timers: {floor:7.2f} s wall   {wakeups:>8} wake-ups (the event loop alone)")
    if work:
        print(f"  the plant's work without Forge: {work:7.2f} s CPU, {work / per_day:.2f} of the target "
              f"(the design's floor); floor / plant = {work / cpu:.2f} (CPU)")
    print(f"  per simulated day: {wall * 24 / args.hours:.1f} s wall, {cpu * 24 / args.hours:.1f} s CPU; "
          f"plant / {per_day:g} s target = {wall / per_day:.2f} (wall), {cpu / per_day:.2f} (CPU)"
          + (f";  plant / bare timers = {wall / floor:.1f}x" if floor else ""))
    for check in failed:
        print(f"  FAILED {check.component}: {check.name}: {check.detail}")
    if args.twice:
        wall2, cpu2, again = simulate(derive, name, seconds, args.seed, profile)
        same = again.trace_digest == summary.trace_digest
        checks = "same checks" if _verdicts(again) == _verdicts(summary) else "DIFFERENT checks"
        print(f"  second run:  {wall2:7.2f} s wall, {cpu2:7.2f} s CPU, digest {again.trace_digest[:16]} "
              f"({'same' if same else 'DIFFERENT'}), {checks}")


def _verdicts(summary: Any) -> list[tuple[str, bool]]:
    return [(f"{c.component}: {c.name}", c.passed) for c in summary.checks]
