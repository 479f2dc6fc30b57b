"""sched.blade_scheduler signs its commands with the plant key (``command_secret``): machines that
hold the key obey the leader and drop a forger's commands, whatever epoch they claim (issue 11 §1)."""

from __future__ import annotations

import pytest
from forge_core.tactics import verify_payload
from forge_core.testing import TestPlant

from .test_blade_scheduler import assignments, leader_of

SECRET = "plant-key-for-tests-0123456789"
KEYED = {"scheduler_params": {"command_secret": "${env:TEST_COMMAND_SECRET}"},
         "machine_params": {"heartbeat_interval": 1.0, "command_secret": "${env:TEST_COMMAND_SECRET}"},
         "env": {"TEST_COMMAND_SECRET": SECRET}}
COMMANDS = ("sched.assign_blade", "sched.swap_blade", "sched.change_fresh_amount")


def test_every_command_is_signed_over_lease_epoch_and_body(sched_plant):
    plant = sched_plant(machines=3, **KEYED)
    plant.advance(20)
    plant.kill("machine-1")
    plant.advance(20)  # a rebalancing swap too
    sent = [e for e in plant.sent() if e.type in COMMANDS]
    assert {e.type for e in sent} >= {"sched.assign_blade", "sched.swap_blade"}
    for e in sent:
        assert verify_payload(SECRET.encode(), "scheduler", e.payload["epoch"], e.payload), e.payload
        assert not verify_payload(b"another-key-0123456789", "scheduler", e.payload["epoch"], e.payload)
    machines = [plant.component(f"machine-{i}") for i in (0, 2)]
    assert all(m.commands for m in machines) and all(m.ctx.fence.forged == 0 for m in machines)


def test_a_forged_runaway_epoch_is_dropped_and_the_true_leader_still_obeyed(sched_plant):
    plant = sched_plant(machines=2, **KEYED)
    plant.advance(15)
    machine = plant.component("machine-0")
    before, newest = list(machine.commands), dict(machine.ctx.fence.newest)
    forged = {"title": "SwapBlade", "machineId": 0, "bladeType": "B", "epoch": 10**12}
    plant.publish("sched/swap_blade", "sched.swap_blade", forged, source="scheduler-0",
                  headers={"forgeepoch": str(10**12), "forgelease": "scheduler"})
    plant.publish_raw("sched/swap_blade", {**forged, "signature": "0" * 64})
    plant.publish_raw("sched/assign_blade", {"title": "AssignBlade", "machineId": 0, "bladeType": "B",
                                             "epoch": 10**12})
    plant.advance(3)
    assert machine.commands == before, "no forged command applied"
    assert machine.ctx.fence.forged == 3 and machine.ctx.fence.newest == newest, "the fence did not move"
    for name in ("scheduler-0", "scheduler-1"):  # the shadow did not mirror them either
        assert plant.component(name).newest_epoch_seen < 10**12
    machine.recover()
    plant.advance(3)
    leader = leader_of(plant)
    assert machine.commands[-1] == ("assign", machine.blade, leader.elector.epoch), "the true leader still obeyed"


def test_unkeyed_schedulers_send_unsigned_commands_as_before(sched_plant):
    plant = sched_plant(machines=2)
    plant.advance(15)
    assert assignments(plant) and all("signature" not in e.payload for e in plant.sent(type="sched.assign_blade"))


def test_the_plant_key_is_never_written_in_the_manifest(tmp_path):
    from ..conftest import write_plant

    root = write_plant(tmp_path / "literal", scheduler_params={"command_secret": SECRET})
    with pytest.raises(Exception, match=r"command_secret.*\$\{env:"):
        TestPlant(root)
    short = write_plant(tmp_path / "short", scheduler_params={"command_secret": "${env:K}"})
    with pytest.raises(Exception, match="command_secret"):
        TestPlant(short, env={"K": "too-short"}).start()
    missing = write_plant(tmp_path / "missing", scheduler_params={"command_secret": "${env:PASTA_NO_SUCH_KEY}"})
    with pytest.raises(Exception, match="PASTA_NO_SUCH_KEY"):
        TestPlant(missing, env={})
