"""plant.yaml loads and validates in each of its three ways to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from industry40.testing import PLANT, registered_types

from forge_core.runtime import load_plant

NEEDS = {"sched.order_scheduler", "mms.factory_monitor", "kafka.bridge"}
pytestmark = pytest.mark.skipif(not registered_types() >= NEEDS, reason="forge-sched, forge-mms or forge-kafka missing")


@pytest.mark.parametrize("profile", [None, "chaos", "distributed"])
def test_each_profile_loads(profile):
    _, manifest = load_plant(PLANT, profile=profile)
    assert manifest.components["factory"].replicas == 4
    if profile == "distributed":
        assert manifest.components["factory"].transport == "factories"
        assert manifest.components["bridge"].type == "kafka.bridge"
        assert manifest.components["pms"].transport == "kafka"
    if profile == "chaos":
        assert manifest.components["chaos"].params["enabled"] is True


def test_forge_validate_accepts_the_plant():
    forge = Path(sys.executable).parent / "forge"
    done = subprocess.run([str(forge), "validate", str(PLANT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "profiles: embedded, chaos, distributed" in done.stdout


def test_forge_validate_refuses_a_pms_that_gives_a_factory_more_than_it_holds(tmp_path):
    """The capacity written twice (factory params, the PMS's capacities) must agree: `forge validate`
    names the PMS's field, the factory's and the overflow; a lower PMS capacity (a reserve) passes."""
    import shutil

    plant = tmp_path / "industry40"
    shutil.copytree(PLANT, plant, ignore=shutil.ignore_patterns(".forge", "inbox", "outbox", "__pycache__"))
    manifest = plant / "plant.yaml"
    text = manifest.read_text()
    assert "capacities: {factory-1: 10, factory-2: 10," in text
    forge = Path(sys.executable).parent / "forge"
    given = "capacities: {factory-1: 10, factory-2: 10,"
    manifest.write_text(text.replace(given, "capacities: {factory-1: 10, factory-2: 12,"))
    done = subprocess.run([str(forge), "validate", str(plant)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, done.stdout
    assert "components.pms.params.capacities.factory-2" in done.stdout + done.stderr
    said = done.stdout + done.stderr
    assert "gives it 12 orders but the factory holds 10 (components.factory.params.capacity)" in said, said
    manifest.write_text(text.replace(given, "capacities: {factory-1: 10, factory-2: 8,"))
    done = subprocess.run([str(forge), "validate", str(plant)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
