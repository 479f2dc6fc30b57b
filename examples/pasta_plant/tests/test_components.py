"""The pasta components on their own: the scheduler's commands are published by the test."""

from __future__ import annotations

import gc

import pytest
from pasta_plant.ledger import MachineRecord
from pasta_plant.testing import stamped

from forge_core import ComponentContext

SOLO = ("scheduler", "storage_monitor")


def assign(plant, machine_id, blade, epoch=1, topic="productionPlan/assignBlade", type_="sched.assign_blade",
           title="AssignBlade"):
    plant.publish(topic, type_, {"title": title, "machineId": machine_id, "bladeType": blade}, headers=stamped(epoch))


def test_machines_beat_without_a_blade_until_assigned(pasta):
    plant = pasta(drop=SOLO)
    plant.advance(6)
    beats = plant.sent("heartbeats", type="sched.machine_heartbeat")
    assert {b.payload["machineId"] for b in beats} == {0, 1, 2}
    assert all("bladeType" not in b.payload for b in beats)
    assign(plant, 1, "B")
    beat = plant.expect("sched.machine_heartbeat", within=6, where=lambda e: e.payload["machineId"] == 1)
    assert beat.payload == {"title": "heartbeat", "machineId": 1, "bladeType": "B"}
    assert plant.component("machine-1").state == "WORKING"
    assert plant.component("machine-0").state == "WAITING_FOR_ASSIGNMENT", "other machines' commands are ignored"


def test_swap_takes_two_seconds_and_is_confirmed(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 0, "A")
    start = plant.now
    assign(plant, 0, "B", topic="productionPlan/swapBlade", type_="sched.swap_blade", title="SwapBlade")
    done = plant.expect("sched.blade_swapped", within=5)
    assert done.payload == {"title": "BladeSwapped", "machineId": 0, "bladeType": "B"}
    assert plant.now - start == pytest.approx(2.0, abs=0.15)
    assert plant.component("machine-0").blade == "B"


def test_kill_command_puts_a_machine_in_recovery_then_waiting(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 2, "A")
    plant.publish("updateManager/killMachine", "pasta.kill_machine", {"title": "KillMachine", "machineId": 2})
    machine = plant.component("machine-2")
    assert machine.state == "RECOVERY" and machine.blade is None
    plant.advance(9.9)
    assert machine.state == "RECOVERY"
    plant.advance(0.2)
    assert machine.state == "WAITING_FOR_ASSIGNMENT"


def test_stale_and_unstamped_commands_are_rejected_and_a_double_assign_is_a_violation(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 0, "A", epoch=3)
    assign(plant, 0, "B", epoch=2, topic="productionPlan/swapBlade", type_="sched.swap_blade", title="SwapBlade")
    plant.publish("productionPlan/assignBlade", "sched.assign_blade",
                  {"title": "AssignBlade", "machineId": 1, "bladeType": "A"})  # no epoch at all
    plant.advance(3)
    machine = plant.component("machine-0")
    assert machine.blade == "A" and machine.record.rejected_stale == 1
    assert plant.component("machine-1").record.rejected_unstamped == 1
    assert all(c.passed for c in machine.checks())
    assign(plant, 0, "B", epoch=3)  # assigned again without a swap
    checks = {c.name: c for c in machine.checks()}
    assert not checks["never assigned twice without a swap"].passed
    assert machine.blade == "A"


def test_a_restarted_machine_remembers_the_newest_epoch(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 0, "A", epoch=5)
    plant.kill("machine-0")
    plant.revive("machine-0")
    assign(plant, 0, "B", epoch=4)
    machine = plant.component("machine-0")
    assert machine.state == "WAITING_FOR_ASSIGNMENT" and machine.record.rejected_stale == 1


def test_the_ledger_keeps_a_machines_counts_across_lives_but_not_its_dead_contexts(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 0, "A", epoch=5)
    for _ in range(8):
        assign(plant, 0, "B", epoch=4, topic="productionPlan/swapBlade", type_="sched.swap_blade", title="SwapBlade")
        plant.kill("machine-0")
        plant.revive("machine-0")
    record = plant.component("machine-0").record
    assert record.rejected_stale == 8, "every life's stale commands still count"
    assert record.incarnations == 9 and plant.component("machine-0").report()["incarnations"] == 9
    gc.collect()
    contexts = [o for o in gc.get_objects() if isinstance(o, ComponentContext) and o.name == "machine-0"]
    assert contexts == [plant.runtime.supervisors["machine-0"].context], "the dead lives are collected"


@pytest.mark.parametrize(("epochs", "monotonic"), [([], True), ([1, 1, 2, 5], True), ([1, 3, 2, 3], False),
                                                   ([4, 1, 9, 9], False), ([2] * 100 + [1], False)])
def test_applied_commands_are_counted_and_checked_but_only_the_latest_kept(epochs, monotonic):
    record = MachineRecord(0)
    for epoch in epochs:
        record.applied.append((0.0, epoch, "sched.assign_blade"))
    assert record.epochs_monotonic() is monotonic and len(record.applied) == len(epochs)
    assert [e for _, e, _ in record.applied] == epochs[-64:]


def test_sorting_clamps_and_confirms(pasta):
    plant = pasta(drop=SOLO)
    for change, expected in ((4, 8), (4, 10), (-2, 8), (-10, 0)):
        plant.publish("sorting/changeFreshAmount", "sched.change_fresh_amount",
                      {"title": "ChangeFreshAmount", "change": change}, headers=stamped(1))
        assert plant.last("sched.fresh_amount_changed").payload == {"title": "FreshAmountChanged",
                                                                    "freshAmount": expected}


def test_production_splits_batches_by_fresh_amount_and_holds_the_target(pasta):
    plant = pasta(drop=SOLO, params={"production": {"publish_new_batch": True}})
    assign(plant, 0, "A")
    plant.advance(6)
    first = [e.payload for e in plant.sent("storage/newBatch")]
    assert [b["isFresh"] for b in first[:2]] == [True, False]
    assert first[0]["bladeType"] == "A" and first[0]["batchId"] + 1 == first[1]["batchId"]
    plant.publish("sorting/changeFreshAmount", "sched.change_fresh_amount",
                  {"title": "ChangeFreshAmount", "change": 2}, headers=stamped(1))
    plant.clear()
    plant.advance(5)
    production = plant.component("production")
    assert production.book["split"].get("6", 0) >= 1, "the next batches follow FreshAmountChanged"
    assert production.total == 200
    levels = plant.last("mms.storage_levels").payload
    assert sum(levels[k] for k in ("aFresh", "aDry", "bFresh", "bDry")) == pytest.approx(200)
    assert all(c.passed for c in production.checks())


def test_monitor_keeps_a_snapshot_without_rendering(pasta):
    plant = pasta(drop=SOLO)
    assign(plant, 0, "A")
    plant.advance(11)
    snap = plant.component("monitor").report()
    assert snap["machines"][0]["blade"] == "A" and snap["levels"]
    assert plant.component("monitor").live is None


def test_chaos_times_a_failover_by_the_successors_grant_not_by_its_own_poll() -> None:
    """The failover took until the lease was granted under a newer epoch; a watch that polled (or was
    starved) later does not lengthen it. No recorded grant: the poll's time, the only evidence."""
    from pasta_plant.components.chaos import Outage, _granted_after

    from forge_core.tactics import Grant

    killed = Outage("scheduler", "scheduler-0", at=100.0, was_leader=True, bound=7.0, epoch=3)
    grants = [Grant(2, "scheduler-1", 40.0), Grant(3, "scheduler-0", 80.0), Grant(4, "scheduler-1", 104.5),
              Grant(5, "scheduler-0", 120.0)]
    assert _granted_after(killed, grants, now=109.0) == 104.5
    assert _granted_after(killed, grants[:2], now=109.0) == 109.0
    assert _granted_after(killed, grants, now=103.0) == 103.0  # never later than seen
