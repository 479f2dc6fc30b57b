"""A plant's simulated run on the virtual clock, timed: what every ``bench_*_sim.py`` measures.

Each benchmark derives its plant's manifest into a temporary directory (a fresh database each run)
and hands it here; the helper runs it as ``forge run --simulate`` does, with the trace recorded so
the digest can be compared run to run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forge_core import VirtualClock
from forge_core.runtime import Runtime, load_plant


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
