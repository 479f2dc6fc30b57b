"""The whole plant as a user runs it: ``forge run`` on a copy of plant.yaml (embedded profile), simulated
and on the real clock, with its checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sensor_monitoring.testing import derive

pytest.importorskip("forge_mms.components.sensor_processor")

CHECKS = {"every produced reading stored exactly once", "every injected anomaly alerted",
          "no alert without an injected anomaly", "alerts cleared after anomalies end"}


def forge_run(plant: Path, *args: str, timeout: float) -> dict:
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(plant), "--json", *args],
                            capture_output=True, text=True, timeout=timeout)
    assert result.stdout.strip(), result.stderr[-3000:]
    summary = json.loads(result.stdout)
    failed = [c for c in summary["checks"] if not c["passed"]]
    assert result.returncode == 0 and not failed, (failed, result.stderr[-3000:])
    return summary


def check(summary: dict, name: str) -> str:
    return next(c["detail"] for c in summary["checks"] if c["name"] == name)


@pytest.mark.slow
def test_a_simulated_hour_passes_every_check(tmp_path):
    summary = forge_run(derive(tmp_path / "plant"), "--simulate", "1h", "--seed", "7", timeout=1800)
    assert {c["name"] for c in summary["checks"]} >= CHECKS
    produced = sum(r["produced"] for name, r in summary["reports"].items() if name.startswith("sensors-"))
    assert produced > 9 * 3500
    assert check(summary, "every produced reading stored exactly once").startswith(f"{produced} produced by 9 lives")
    alerted = check(summary, "every injected anomaly alerted")
    judged = int(alerted.split()[0])
    assert judged >= 12 and f"{judged} alerted, 0 missed" in alerted, "the schedule's 4 and the seeded random ones"


@pytest.mark.slow
def test_the_embedded_plant_on_the_real_clock(tmp_path):
    summary = forge_run(derive(tmp_path / "plant"), "--duration", "8s", timeout=300)
    produced = sum(r["produced"] for name, r in summary["reports"].items() if name.startswith("sensors-"))
    assert produced >= 9 * 5
    assert "0 lost" in check(summary, "every produced reading stored exactly once")


@pytest.mark.slow
def test_a_seed_replays_the_run_even_in_the_same_directory(tmp_path):
    runs = {name: derive(tmp_path / name) for name in ("a", "b", "c")}
    first = forge_run(runs["a"], "--simulate", "5m", "--seed", "7", timeout=900)
    again = forge_run(runs["b"], "--simulate", "5m", "--seed", "7", timeout=900)
    other = forge_run(runs["c"], "--simulate", "5m", "--seed", "8", timeout=900)
    assert first["trace_digest"] == again["trace_digest"] != other["trace_digest"]
    assert "4 anomalies judged, 4 alerted" in check(first, "every injected anomaly alerted"), "the schedule's"
    # a simulated run starts from fresh state of its own (PLANT/.forge/simulation/, emptied at its start), so
    # the next one in the same directory is the same run: epoch 0 again, the same digest. (A real-clock run on
    # the same data dir continues in a new epoch: components/test_sensors.py.)
    later = forge_run(runs["a"], "--simulate", "5m", "--seed", "7", timeout=900)
    lives = later["reports"]["sensors-0"]["sensors"]["temp-1"]["lives"]
    assert [life["epoch"] for life in lives] == [0] and lives[0]["first_seq"] == 1
    assert later["trace_digest"] == first["trace_digest"]
