"""The machine model: seeded, event-driven, the same ground truth however coarse the ticks."""

from __future__ import annotations

import random

from forge_opcua import MachineTiming
from forge_opcua.simulator.model import STATES, PlcModel

FAST = MachineTiming(ideal_cycle_time=1.0, speed_loss=0.2, scrap_rate=0.1, mean_running=30.0, mean_idle=5.0,
                     mean_down=8.0, mean_setup=12.0)


def run(seed: int, tick: float, until: float = 3600.0) -> dict:
    model = PlcModel(["M1", "M2"], FAST, random.Random(seed), 1000.0)
    t = 1000.0
    while t < 1000.0 + until:
        t = min(t + tick, 1000.0 + until)
        model.advance(t)
    return model.totals()


def test_same_seed_same_truth_whatever_the_tick() -> None:
    fine, coarse = run(7, 0.1), run(7, 60.0)
    assert fine == coarse
    assert run(8, 1.0) != fine


def test_counters_states_and_time_add_up() -> None:
    totals = run(3, 0.5)
    for machine in totals.values():
        assert 0 < machine["good"] <= machine["total"]
        assert abs(sum(machine["seconds"].values()) - 3600.0) < 0.01  # rounded to ms per state
        run_time = machine["seconds"]["running"]
        # a part takes 1.0 to 1.2 s of running; a stop abandons at most one part per stop
        stops = sum(machine["stops"].values())
        assert run_time / 1.2 - stops - 1 <= machine["total"] <= run_time / 1.0
        assert machine["total"] * 0.8 < machine["good"] < machine["total"]  # scrap 10 %
        assert set(machine["stops"]) == {"idle", "down", "setup"} and all(machine["stops"].values())
        assert machine["state"] in STATES


def test_fault_code_only_while_down() -> None:
    model = PlcModel(["M1"], FAST, random.Random(1), 0.0)
    machine = model.machines["M1"]
    seen_down = False
    for step in range(1, 20_000):
        model.advance(step * 0.25)
        assert (machine.fault_code != 0) == (machine.state == "down")
        seen_down |= machine.state == "down"
        if machine.state == "down":
            assert machine.fault_code in FAST.fault_codes
    assert seen_down


def test_advance_reports_what_changed_only() -> None:
    model = PlcModel(["M1", "M2"], MachineTiming(ideal_cycle_time=10.0, mean_running=1e9), random.Random(1), 0.0,
                     cycle_times={"M2": 100.0})
    assert model.advance(5.0) == []
    assert [m.id for m in model.advance(13.0)] == ["M1"]
    assert model.machines["M2"].ideal_cycle_time == 100.0
