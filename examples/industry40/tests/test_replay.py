"""The same seed replays the same simulated chaos day: two runs give the same trace digest (every
message published, in order, with its time, ids and body), so a failure seen once can be replayed."""

from __future__ import annotations

from pathlib import Path

import pytest
from industry40.testing import derive, registered_types

from forge_core import VirtualClock
from forge_core.runtime import Runtime, load_plant

pytestmark = pytest.mark.skipif(not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor"},
                                reason="forge-sched's order scheduler or forge-mms's factory monitor missing")


def simulate(tmp: Path, seed: int, seconds: float = 900.0):
    plugins, manifest = load_plant(derive(tmp), profile="chaos")
    clock = VirtualClock()
    runtime = Runtime(manifest, plugins, clock=clock, seed=seed, record_trace=True, serve_health=False)
    try:
        return clock.run(runtime.run(seconds))
    finally:
        clock.close()


def test_two_runs_with_one_seed_publish_the_same_trace(tmp_path):
    first, second = simulate(tmp_path / "a", 7), simulate(tmp_path / "b", 7)
    assert first.total_published > 2_000
    assert sum(first.reports["chaos"].get(k, 0) for k in ("stop", "degraded", "flapping", "kill")) >= 5
    created = first.reports["pms-0"]["created"] + first.reports["pms-1"]["created"]
    assert created >= 30, "orders were created (their ids are in the trace)"
    assert all(c.passed for c in first.checks), [(c.name, c.detail) for c in first.checks if not c.passed]
    assert (second.trace_digest, second.total_published) == (first.trace_digest, first.total_published)
    assert simulate(tmp_path / "c", 8).trace_digest != first.trace_digest, "the seed matters"
