"""The whole-plant check "no command applied with an epoch no leader held" (issue 11 §1): the
machines' accepted epochs against the lease's grant history, over the merged summary."""

from __future__ import annotations

from pathlib import Path

from pasta_plant.epoch_checks import NAME, epoch_checks
from pasta_plant.testing import derive, needs_sched, stamped

from forge_core.runtime import RunSummary
from forge_core.testing import TestPlant

KEY = "embedded-plant-key-0123456789"


def summary(reports: dict) -> RunSummary:
    return RunSummary(plant="pasta_plant", profile="distributed", clock="real", seed=None, duration=1.0,
                      wall_seconds=1.0, reports=reports)


def monitor(granted: list[int], announced: list[int] | None = None, reads: int = 3) -> dict:
    return {"granted_epochs": granted, "announced_epochs": announced or [], "grant_history_reads": reads,
            "grant_history_truncated": False}


def test_an_epoch_never_granted_fails_the_check_naming_machine_and_epochs() -> None:
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [3, 4]},
                                    "machine-1": {"accepted_epochs": [4, 10**12]},
                                    "monitor": monitor([1, 2, 3, 4])}))
    assert check.name == NAME and not check.passed
    assert "machine-1 applied epochs [1000000000000]" in check.detail and "machine-0" not in check.detail


def test_a_killed_life_counted_on_the_machines_disk_is_judged_too() -> None:
    """Distributed: the last life's report has no epochs, its odometer has what a SIGKILLed life got."""
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [], "odometer": {"counts": {
        "beats": 9, "received:2": 1, "received:999": 1}}}, "monitor": monitor([1, 2])}))
    assert not check.passed and "machine-0 applied epochs [999]" in check.detail


def test_granted_and_recently_announced_epochs_pass() -> None:
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [3, 5]}, "machine-1": {"accepted_epochs": []},
                                    "monitor": monitor([1, 2, 3, 4], announced=[5])}))
    assert check.passed, check.detail
    # an announcement cannot vouch for an epoch below what the history already holds
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [0]},
                                    "monitor": monitor([1, 2], announced=[0])}))
    assert not check.passed


def test_without_a_grant_history_the_check_says_not_run() -> None:
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [7]}}))
    assert check.passed and check.detail.startswith("not run: ")
    [check] = epoch_checks(summary({"machine-0": {"accepted_epochs": [7]}, "monitor": monitor([], reads=0)}))
    assert check.detail.startswith("not run: ")
    assert epoch_checks(summary({"monitor": monitor([1])})) == []


def forge_swap(plant: TestPlant) -> None:
    """The issue's attack on the in-process bus: SwapBlade with a runaway epoch, headers and body."""
    plant.publish("productionPlan/swapBlade", "sched.swap_blade",
                  {"title": "SwapBlade", "machineId": 0, "bladeType": "B", "epoch": 10**12}, source="forger",
                  headers=stamped(10**12))


@needs_sched
def test_the_run_check_sees_a_forged_epoch_obeyed_by_an_unsigned_plant(tmp_path: Path) -> None:
    plant = TestPlant(derive(tmp_path / "unsigned", drop=("chaos",)), seed=1).start()
    try:
        plant.advance(20)
        forge_swap(plant)
        plant.advance(10)
    finally:
        result = plant.stop()
    [check] = [c for c in result.checks if c.name == NAME]
    assert not check.passed and "machine-0 applied epochs [1000000000000]" in check.detail, check.detail
    assert 10**12 not in result.reports["monitor"]["granted_epochs"]


@needs_sched
def test_a_signed_plant_drops_the_forgery_and_the_check_passes(tmp_path: Path) -> None:
    secret = {"command_secret": "${env:PASTA_COMMAND_SECRET}"}
    root = derive(tmp_path / "signed", drop=("chaos",), params={"machine": secret, "scheduler": secret})
    plant = TestPlant(root, seed=1, env={"PASTA_COMMAND_SECRET": KEY}).start()
    try:
        plant.advance(20)
        forge_swap(plant)
        plant.advance(10)
        assert plant.component("machine-0").state == "WORKING"
    finally:
        result = plant.stop()
    machines = {name: r for name, r in result.reports.items() if name.startswith("machine-")}
    assert sum(r["forged_dropped"] for r in machines.values()) == 3, "each machine's fence dropped it"
    assert all(r["accepted_epochs"] for r in machines.values()), "every machine was assigned, signed"
    [check] = [c for c in result.checks if c.name == NAME]
    assert check.passed and not check.detail.startswith("not run"), check.detail
    assert result.checks_passed, [c for c in result.checks if not c.passed]
