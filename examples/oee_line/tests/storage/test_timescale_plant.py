"""The plant's historian and OEE components on the TimescaleDB test server, as the distributed profile's analytics
process runs them (real clock: writes and OEE windows in worker threads, at the same time), through the manifest's
``storage.pool_size: 1`` and ``storage.prepared_statements: false``: the server has one session, which every
connection of the plant's engine shares in turn, so the engine may hold one connection at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from forge_opcua.settings import MachineTiming
from oee_line.components.historian import Historian
from oee_line.components.oee import OeeCalculator, compute_window
from oee_line.oee import ShiftWindow, compute
from oee_line.storage.timescale_server import TimescaleServer
from oee_line.testing import host_messages, machines

from forge_core.plant import load_plant
from forge_core.runtime import Runtime

pytestmark = [pytest.mark.servers, pytest.mark.slow]

PLANT = Path(__file__).resolve().parents[2]
CYCLES = {"M1": 2.0, "M2": 3.0, "M3": 1.5}
SECONDS = 600.0


def _component(runtime: Runtime, name: str) -> Any:
    return runtime.supervisors[name].instance


async def _run(runtime: Runtime, bodies: list[dict[str, Any]]) -> tuple[Historian, OeeCalculator, dict[str, Any]]:
    await runtime.start()
    try:
        historian, oee = _component(runtime, "historian"), _component(runtime, "oee")
        assert isinstance(historian, Historian) and isinstance(oee, OeeCalculator)
        window = ShiftWindow("test", 0, 0.0, SECONDS)
        for i, body in enumerate(bodies):
            await runtime.bus.publish(f"sparkplug/data/line1/edge-1/{body['device']}", "sparkplug.metrics", body,
                                      source="host")
            if i % 200 == 0:  # OEE windows computed (a worker thread) while the historian writes (another)
                await oee.publish_now(window)
        for _ in range(1200):
            if historian.report()["messages"] == len(bodies):
                break
            await asyncio.sleep(0.05)
        await historian._percentiles()  # the continuous aggregates refreshed (a worker thread too)
        figures = await asyncio.to_thread(compute_window, oee.store, oee.params, window)
        published = await oee.publish_now(window)
    finally:
        summary = await runtime.stop()
    return historian, oee, {"figures": figures, "published": published, "summary": summary}


def test_the_historian_and_oee_run_on_the_timescale_server_through_the_pool_setting(tmp_path: Path) -> None:
    manifest = yaml.safe_load((PLANT / "plant.yaml").read_text())
    manifest["profiles"]["distributed"]["storage"] |= {"pool_size": 1, "prepared_statements": False}
    plant = tmp_path / "plant" / "plant.yaml"
    plant.parent.mkdir()
    plant.write_text(yaml.safe_dump(manifest, sort_keys=False))
    models = machines(CYCLES, seed=5, timing=MachineTiming(mean_running=120, mean_idle=20, mean_down=40,
                                                            mean_setup=60))
    bodies = [body for _, body in host_messages(models, SECONDS)]
    with TimescaleServer(base_dir=tmp_path / "timescale") as server:
        plugins, loaded = load_plant(plant, profile="distributed", env={"OEE_DB_URL": server.url})
        assert (loaded.storage.pool_size, loaded.storage.prepared_statements) == (1, False)
        runtime = Runtime(loaded, plugins, only=["historian", "oee"], serve_health=False)
        historian, oee, out = asyncio.run(_run(runtime, bodies))

    assert oee.store.on_timescale()  # migrated to head on start: a hypertable and continuous aggregates
    assert (oee.store.engine.pool.size(), oee.store.engine.pool._max_overflow) == (1, 0)  # type: ignore[attr-defined]
    report = historian.report()
    assert report["errors"] == 0 and report["stored"] > 0 and report["messages"] == len(bodies)
    for mid, m in models.items():
        truth = compute(SECONDS, m.totals.seconds["running"], m.ideal_cycle_time, m.total, m.good)
        got = out["figures"][mid].figures
        assert (got.total, got.good) == (m.total, m.good)
        assert got.oee == pytest.approx(truth.oee, abs=1e-5)
    assert {(b["scope"], b["id"]) for b in out["published"]} == {("machine", m) for m in CYCLES} | {("line", "line1")}
    assert set(out["summary"].components) == {"historian", "oee"}
