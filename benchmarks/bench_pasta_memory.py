"""Memory of the pasta plant over a long simulated chaos run: what grows per simulated day.

    python benchmarks/bench_pasta_memory.py [--hours 24] [--seed 7] [--every 2] [--holders]

Runs examples/pasta_plant (profile chaos) on the virtual clock, as ``forge run examples/pasta_plant
--simulate 24h --seed 7 --profile chaos`` does, and every ``--every`` simulated hours counts (after
``gc.collect()``) the live ``ComponentContext`` objects (and how many belong to no running instance:
dead), the subscriptions on the in-memory hub (and how many belong to a dead context), the pending
tasks and the traced heap (tracemalloc). It prints one row per sample and the heap's growth per
simulated day, measured between the first sample after warm-up (``--warmup`` hours) and the last.
``--holders`` also names what keeps dead contexts alive (gc.get_referrers, one level up).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from pasta_plant.testing import derive

from forge_core import ComponentContext, VirtualClock
from forge_core.runtime import Runtime, load_plant

HOUR = 3600.0


def live_contexts(runtime: Runtime) -> tuple[int, list[ComponentContext]]:
    """(all live contexts, the dead ones: those no supervisor currently holds)."""
    gc.collect()
    current = {id(s.context) for s in runtime.supervisors.values() if s.context is not None}
    contexts = [o for o in gc.get_objects() if isinstance(o, ComponentContext)]
    return len(contexts), [c for c in contexts if id(c) not in current]


def hub_subscriptions(runtime: Runtime) -> int:
    return sum(len(getattr(getattr(t, "hub", None), "subs", ())) for t in runtime.transports.values())


def holders(dead: list[ComponentContext], limit: int = 200) -> Counter[str]:
    """What refers to the dead contexts (the type of each referrer, one level up)."""
    found: Counter[str] = Counter()
    ignore = {id(dead)}
    for ctx in dead[:limit]:
        for ref in gc.get_referrers(ctx):
            if id(ref) in ignore or ref is dead:
                continue
            name = type(ref).__name__
            if name == "function":
                name = f"function {ref.__qualname__}"
            elif name == "cell":
                name = "cell (a closure)"
            elif name == "dict":
                owners = [type(o).__name__ for o in gc.get_referrers(ref) if getattr(o, "__dict__", None) is ref]
                name = f"dict of {owners[0]}" if owners else "dict"
            elif name == "list":
                owners = [type(o).__name__ for o in gc.get_referrers(ref)
                          if isinstance(getattr(o, "__dict__", None), dict) and ref in o.__dict__.values()]
                name = f"list in {owners[0]}" if owners else "list"
            found[name] += 1
    return found


def measure(hours: float, seed: int, every: float, show_holders: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = derive(Path(tmp) / "pasta")
        plugins, manifest = load_plant(directory, profile="chaos")
        clock = VirtualClock()
        runtime = Runtime(manifest, plugins, clock=clock, seed=seed, serve_health=False)
        tracemalloc.start()
        start = time.perf_counter()

        def sample() -> None:
            total, dead = live_contexts(runtime)
            pending = sum(1 for t in asyncio.all_tasks() if not t.done())
            current, peak = tracemalloc.get_traced_memory()
            row = {"hours": (clock.monotonic() - runtime._start_clock) / HOUR, "contexts": total,
                   "dead": len(dead), "subs": hub_subscriptions(runtime), "tasks": pending,
                   "mb": current / 1e6, "peak_mb": peak / 1e6, "wall": time.perf_counter() - start}
            rows.append(row)
            print(f"  {row['hours']:6.1f} h  contexts {total:5d} (dead {len(dead):5d})  hub subscriptions "
                  f"{row['subs']:6d}  tasks {pending:5d}  heap {row['mb']:7.1f} MB  wall {row['wall']:6.1f} s",
                  flush=True)
            if show_holders and dead:
                for name, count in holders(dead).most_common(12):
                    print(f"           held by {count:5d} x {name}")
            del dead

        async def main() -> None:
            await runtime.start()
            try:
                elapsed = 0.0
                while elapsed < hours * HOUR:
                    step = min(every * HOUR, hours * HOUR - elapsed)
                    await clock.sleep(step)
                    elapsed += step
                    sample()
            finally:
                await runtime.stop()

        try:
            clock.run(main())
        finally:
            clock.close()
            tracemalloc.stop()
    return rows


def growth_per_day(rows: list[dict[str, Any]], warmup: float) -> float:
    """Heap growth in MB per simulated day between the first sample at or after ``warmup`` hours
    and the last (warm-up: caches, the ledger's first records, the route cache filling)."""
    steady = [r for r in rows if r["hours"] >= warmup - 1e-9] or rows
    first, last = steady[0], rows[-1]
    span = last["hours"] - first["hours"]
    return 0.0 if span <= 0 else (last["mb"] - first["mb"]) * 24.0 / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=float, default=2.0, help="simulated hours between samples")
    parser.add_argument("--warmup", type=float, default=2.0, help="simulated hours before growth is measured")
    parser.add_argument("--holders", action="store_true", help="name what keeps dead contexts alive")
    args = parser.parse_args()
    print(f"simulating {args.hours:g} h of examples/pasta_plant (profile chaos, seed {args.seed}) under tracemalloc")
    rows = measure(args.hours, args.seed, args.every, args.holders)
    last = rows[-1]
    print(f"after {last['hours']:g} h: {last['contexts']} live ComponentContexts ({last['dead']} dead), "
          f"{last['subs']} hub subscriptions, heap {last['mb']:.1f} MB (peak {last['peak_mb']:.1f} MB)")
    growth = growth_per_day(rows, args.warmup)
    print(f"heap growth after {args.warmup:g} h of warm-up: {growth:.2f} MB per simulated day")


if __name__ == "__main__":
    main()
