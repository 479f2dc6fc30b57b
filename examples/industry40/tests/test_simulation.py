"""``forge run examples/industry40 --simulate ... --profile chaos`` twice in one plant directory: each
run starts from fresh state of its own (``.forge/simulation/``, forge_core.cli.simulation), so both
pass every check and replay the same trace. Before, the second run found the first one's ledger,
orders, fencing epochs and inbox/outbox (its virtual clock starts at 2024-01-01 again): its PMS
crash-looped on stale epochs and the erp_link and clients checks failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from industry40.testing import PLANT, registered_types

pytestmark = pytest.mark.skipif(
    not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor", "b2mml.drop_folder"},
    reason="forge-sched, forge-mms or forge-b2mml missing")


def simulate(plant: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(plant), "--simulate", "20m",
                             "--seed", "1", "--profile", "chaos", "--json"], capture_output=True, text=True,
                            timeout=900)
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_two_simulated_chaos_runs_in_one_directory_both_pass_and_replay_the_same(tmp_path: Path) -> None:
    plant = tmp_path / "industry40"
    plant.mkdir()
    shutil.copy(PLANT / "plant.yaml", plant / "plant.yaml")  # the real manifest, its storage under {plant_dir}
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    first, second = simulate(plant), simulate(plant)
    for run in (first, second):
        failed = [(c["component"], c["name"], c["detail"]) for c in run["checks"] if not c["passed"]]
        assert not failed, failed
        assert run["reports"]["erp_link"]["requests"] >= 3, "the ERP sent schedules in the run"
        assert "failed" not in run["components"].values() and not run["restarts"], (run["components"], run["restarts"])
    assert second["trace_digest"] == first["trace_digest"]
    assert second["reports"]["erp_link"] == first["reports"]["erp_link"]
    state = plant / ".forge" / "simulation"
    assert (state / ".forge" / "industry40.db").exists() and (state / "outbox").is_dir()
    assert not (plant / ".forge" / "industry40.db").exists() and not (plant / "outbox").exists(), \
        "a simulation never writes the plant's own state"
