"""sched.blade_scheduler in a TestPlant (virtual time) with fake cutting machines."""

from __future__ import annotations

from collections import Counter
from typing import Any

from forge_core.testing import TestPlant, backlog_on_subscribe

ALERT = {"title": "StorageAlert", "aFresh": 50.0, "aDry": 50.0, "bFresh": 50.0, "bDry": 50.0}


def leader_of(plant: TestPlant) -> Any:
    """The scheduler replica that leads now (AssertionError if none)."""
    for name in ("scheduler-0", "scheduler-1"):
        try:
            component = plant.component(name)
        except KeyError:
            continue
        if component.leading:
            return component
    raise AssertionError("no scheduler leads")


def assignments(plant: TestPlant) -> list[tuple[int, str]]:
    return [(e.payload["machineId"], e.payload["bladeType"]) for e in plant.sent(type="sched.assign_blade")]


def blades(plant: TestPlant, machines: int) -> Counter[str]:
    return Counter(plant.component(f"machine-{i}").blade for i in range(machines))


def test_discovery_then_balanced_assignment(sched_plant):
    plant = sched_plant(machines=3)
    plant.advance(11)
    assert assignments(plant) == [], "nothing is assigned during the 12 s discovery phase"
    plant.advance(2.5)
    assert assignments(plant) == [(0, "A"), (1, "B"), (2, "A")]
    plant.advance(5)
    assert blades(plant, 3) == Counter({"A": 2, "B": 1})
    leader = leader_of(plant)
    assert all(e.source == leader.name for e in plant.sent(type="sched.assign_blade")), "only the leader commands"
    assert all(e.payload["epoch"] == leader.elector.epoch for e in plant.sent(type="sched.assign_blade"))
    assert leader.counts == {"A": 2, "B": 1}


def test_four_machines_two_and_two_and_no_double_assignment(sched_plant):
    plant = sched_plant(machines=4)
    plant.advance(60)
    assert blades(plant, 4) == Counter({"A": 2, "B": 2})
    sent = assignments(plant)
    assert len(sent) == 4 and len({mid for mid, _ in sent}) == 4, f"one assignment per machine, got {sent}"
    for name in ("scheduler-0", "scheduler-1"):
        assert all(check.passed for check in plant.component(name).checks())


def test_a_machine_with_a_blade_is_not_assigned_and_a_recovered_one_is(sched_plant):
    plant = sched_plant(machines=2)
    plant.component("machine-1").blade = "B"      # already working when the scheduler starts
    plant.advance(20)
    assert assignments(plant) == [(0, "A")], "machine 1 showed blade B in its heartbeats"
    plant.component("machine-0").recover()         # RECOVERY: the blade is gone, WAITING again
    plant.advance(5)
    assert assignments(plant) == [(0, "A"), (0, "A")], "a recovered machine may be assigned again"
    leader = leader_of(plant)
    assert leader.stats["recoveries"] == 1
    assert all(check.passed for check in leader.checks())


def test_machine_death_is_rebalanced_by_a_swap(sched_plant):
    plant = sched_plant(machines=3)
    plant.advance(15)
    assert blades(plant, 3) == Counter({"A": 2, "B": 1})
    plant.kill("machine-1")                        # the only B
    killed = plant.now
    swap = plant.expect("sched.swap_blade", within=10 + 5 + 1)
    assert plant.now - killed <= 10 + 5 + 1, "silent 10 s, noticed by the 5 s health check"
    assert swap.payload["bladeType"] == "B" and swap.payload["machineId"] in (0, 2)
    plant.advance(3)
    assert plant.sent(type="sched.blade_swapped"), "the machine confirmed"
    assert Counter(plant.component(f"machine-{i}").blade for i in (0, 2)) == Counter({"A": 1, "B": 1})
    leader = leader_of(plant)
    assert leader.stats["swaps_confirmed"] == 1 and leader.counts == {"A": 1, "B": 1}


def test_a_death_report_removes_at_once(sched_plant):
    plant = sched_plant(machines=3)
    plant.advance(15)
    plant.publish("forge/status/1", "forge.status", {"source": "1", "status": "DOWN", "previous": "UP",
                                                     "at": 0.0, "reason": "test", "monitor": "m"})
    swap = plant.last("sched.swap_blade")
    assert swap.payload["bladeType"] == "B"
    plant.publish("forge/death/scheduler-1", "forge.death", {"source": "scheduler-1", "seq": 1})
    assert len(leader_of(plant).machines) == 2, "a death of a non-machine source is ignored"


def test_storage_alert_changes_fresh_amount_with_sign_size_and_cooldown(sched_plant):
    plant = sched_plant(machines=2)
    plant.advance(15)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "aFresh": 10.0, "bFresh": 10.0})
    first = plant.last("sched.change_fresh_amount")
    assert first.payload["change"] == 4, "fresh 40 points below target: far, more fresh"
    plant.advance(3)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "aFresh": 10.0, "bFresh": 10.0})
    assert len(plant.sent(type="sched.change_fresh_amount")) == 1, "10 s cooldown"
    plant.advance(8)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "aDry": 30.0, "bDry": 30.0})
    second = plant.last("sched.change_fresh_amount")
    assert second.payload["change"] == -2, "dry 20 points below target: near, more dry"
    plant.advance(11)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "aFresh": 95.0, "bFresh": 95.0})
    assert plant.last("sched.change_fresh_amount").payload["change"] == -4
    plant.advance(11)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "aFresh": 55.0})
    assert len(plant.sent(type="sched.change_fresh_amount")) == 3, "within the threshold: no reaction"
    assert leader_of(plant).stats["fresh_changes"] == 3


def test_blade_alert_swaps_toward_the_failing_type(sched_plant):
    plant = sched_plant(machines=3)
    plant.advance(15)                              # A, B, A
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "bFresh": 5.0, "bDry": 5.0})
    swap = plant.last("sched.swap_blade")
    assert swap.payload["bladeType"] == "B" and swap.payload["machineId"] in (0, 2)
    plant.advance(11)
    plant.publish("storage/alert", "sched.storage_alert", {**ALERT, "bFresh": 5.0, "bDry": 5.0})
    assert len(plant.sent(type="sched.swap_blade")) == 1, "a second swap would make B outnumber A by 2"


def test_leader_killed_shadow_takes_over_without_duplicate_assignments(sched_plant):
    plant = sched_plant(machines=4)
    plant.advance(15)
    old = leader_of(plant)
    first = assignments(plant)
    assert len(first) == 4
    plant.kill(old.name)
    killed = plant.now
    shadow_name = "scheduler-1" if old.name == "scheduler-0" else "scheduler-0"
    shadow = plant.component(shadow_name)
    took = plant.run_until(lambda: shadow.leading, timeout=10, step=0.1)
    assert took <= 5.0 + 1.0 + 0.1, "lease 5 s + retry 1 s"
    assert shadow.elector.epoch > old.elector.epoch
    plant.advance(30)
    assert assignments(plant) == first, "the successor did not re-assign anything"
    # a machine recovers: the successor assigns it, with its own epoch, accepted by the machine
    plant.component("machine-2").recover()
    plant.advance(3)
    last = plant.sent(type="sched.assign_blade")[-1]
    assert last.payload["machineId"] == 2 and last.payload["epoch"] == shadow.elector.epoch
    assert plant.component("machine-2").commands[-1][2] == shadow.elector.epoch
    assert killed < plant.now and all(check.passed for check in shadow.checks())


def test_successor_resumes_from_persisted_state_it_never_heard(sched_plant):
    """The shadow missed the leader's commands (partitioned): the saved state stops a re-assignment."""
    plant = sched_plant(machines=2, machine_params={"heartbeat_interval": 1.0})
    bus = plant.transport("bus")
    plant.advance(2)
    follower = next(plant.component(n) for n in ("scheduler-0", "scheduler-1")
                    if not plant.component(n).leading)
    leader = leader_of(plant)
    bus.faults.partition(follower.name)
    plant.advance(12.5)
    assert len(assignments(plant)) == 2
    plant.kill(leader.name)
    plant.run_until(lambda: follower.leading, timeout=10)  # still cut off: only the saved state tells it
    assert follower.stats["resumed_machines"] == 2
    assert follower.counts == {"A": 1, "B": 1} and not follower.waiting
    bus.faults.heal()
    plant.advance(20)
    assert len(assignments(plant)) == 2, assignments(plant)


def test_stale_epoch_commands_never_reach_machines(sched_plant):
    plant = sched_plant(machines=2)
    plant.advance(15)
    old = leader_of(plant)
    plant.kill(old.name)
    plant.advance(8)
    new = leader_of(plant)
    plant.component("machine-0").recover()
    plant.advance(3)                                  # the new epoch reached machine 0
    machine = plant.component("machine-0")
    before = list(machine.commands)
    # the deposed leader's late commands (its epoch in headers and payload)
    stale = old.elector.epoch
    plant.publish("sched/assign_blade", "sched.assign_blade",
                  {"title": "AssignBlade", "machineId": 0, "bladeType": "B", "epoch": stale},
                  source=old.name, headers={"forgeepoch": str(stale), "forgelease": "scheduler"})
    plant.publish_raw("sched/swap_blade", {"title": "SwapBlade", "machineId": 0, "bladeType": "B",
                                                   "epoch": stale})
    plant.advance(3)
    assert machine.commands == before
    assert machine.ctx.fence.rejected == 2
    assert new.elector.epoch > stale


def test_malformed_and_unknown_messages_are_dead_lettered_and_the_scheduler_lives_on(sched_plant):
    plant = sched_plant(machines=2)
    plant.advance(15)
    plant.publish_raw("heartbeats", b"{not json")
    plant.publish_raw("heartbeats", {"title": "heartbeat", "machineId": "seven"})
    plant.publish_raw("heartbeats", {"title": "hello", "machineId": 3})
    plant.publish_raw("storage/alert", {"title": "StorageAlert", "aFresh": "low"})
    plant.publish_raw("sched/blade_swapped", {"title": "BladeSwapped"})
    plant.advance(10)
    reasons = Counter(letter.reason for letter in plant.dead_letters)
    assert sum(reasons.values()) >= 5, reasons
    assert plant.state("scheduler-0") == "running" and plant.state("scheduler-1") == "running"
    assert len(leader_of(plant).machines) == 2


def test_report_and_checks(sched_plant):
    plant = sched_plant(machines=3)
    plant.advance(20)
    leader = leader_of(plant)
    report = leader.report()
    assert report["assignments"] == 3 and report["elections"] == 1 and report["leading"]
    assert report["offsets"]["heartbeats"] > 0
    names = [c.name for c in leader.checks()]
    assert len(names) == 2 and all(c.passed for c in leader.checks())
    summary = plant.stop()
    assert all(check.passed for check in summary.checks)


def test_seed_timings_with_chaos_keep_the_invariants(sched_plant):
    """Heartbeats every 5 s, machines killed and revived (WAITING again), the leader killed and revived."""
    plant = sched_plant(machines=6, machine_params={"heartbeat_interval": 5.0, "swap_time": 2.0})
    plant.advance(30)
    assert blades(plant, 6) == Counter({"A": 3, "B": 3})
    plant.kill("machine-1")
    plant.kill("machine-4")
    plant.advance(30)
    live = [i for i in range(6) if i not in (1, 4)]
    counts = Counter(plant.component(f"machine-{i}").blade for i in live)
    assert abs(counts["A"] - counts["B"]) <= 1, counts
    old = leader_of(plant)
    plant.kill(old.name)
    plant.revive("machine-1")                       # a fresh instance: no blade, WAITING
    plant.advance(40)
    plant.revive(old.name)
    plant.revive("machine-4")
    plant.advance(40)
    counts = Counter(plant.component(f"machine-{i}").blade for i in range(6))
    assert None not in counts and abs(counts["A"] - counts["B"]) <= 1, counts
    for i in range(6):
        applied = plant.component(f"machine-{i}").commands
        epochs = [epoch for _, _, epoch in applied]
        assert epochs == sorted(epochs), f"machine {i} applied an older epoch after a newer one: {applied}"
    summary = plant.stop()
    failed = [c for c in summary.checks if not c.passed]
    assert not failed, failed


def test_a_bad_record_in_the_saved_state_is_dead_lettered_and_the_successor_leads(sched_plant):
    """Issue 11: a phantom machine 1.23e29 saved by the leader made every successor crash in
    on_elected (int('1.2345678901234568e+29')) and never lead. Now the record is dead-lettered and
    skipped, and the successor leads with the good ones."""
    from forge_sched.blades.table import Machine

    plant = sched_plant(machines=2)
    plant.advance(15)
    old = leader_of(plant)
    phantom = 1.2345678901234568e29
    old.table.machines[phantom] = Machine(phantom, plant.clock.time())  # type: ignore[index]  # as saved before the fix
    plant.advance(6)  # a periodic save writes it
    plant.kill(old.name)
    successor = plant.component("scheduler-1" if old.name == "scheduler-0" else "scheduler-0")
    plant.run_until(lambda: successor.leading, timeout=10, step=0.1)
    plant.advance(10)
    assert successor.leading and plant.state(successor.name) == "running"
    assert not plant.summary.restarts
    letters = [d for d in plant.dead_letters if d.component == successor.name]
    assert len(letters) == 1 and letters[0].reason == "invalid", letters
    assert "machines/1.2345678901234568e+29" in letters[0].detail and "not an integer" in letters[0].detail
    assert sorted(successor.machines) == [0, 1]


def test_both_schedulers_report_leading_at_a_stop_in_turn_but_their_terms_do_not_overlap(sched_plant):
    """Issue 11 §5: in a multi-process plant every process gets SIGTERM at once and reports when
    the OS runs it. The leader reports leading and releases the lease; the standby, stopped a
    moment later, has been elected meanwhile and reports leading too. Not split-brain: the terms
    (epoch, from, to) in the reports show one after the other."""
    plant = sched_plant(machines=2)
    plant.advance(15)
    old = leader_of(plant)
    standby = plant.component("scheduler-1" if old.name == "scheduler-0" else "scheduler-0")
    first = old.report()  # the runtime's order at stop: report, then stop (which releases the lease)
    plant._run(plant.runtime.supervisors[old.name].stop())
    plant.run_until(lambda: standby.leading, timeout=3, step=0.1)  # elected within retry_every (1 s)
    second = standby.report()
    assert first["leading"] and second["leading"]  # what the issue saw: "both leading True"
    (mine,), (theirs,) = first["terms"][-1:], second["terms"][-1:]
    assert mine["to"] is None or mine["to"] <= theirs["from"]
    assert theirs["epoch"] > mine["epoch"] and theirs["to"] is None
    ended = old.report()["terms"][-1]
    assert ended["to"] is not None and ended["to"] <= theirs["from"] and ended["sent"] == 2  # two assignments


def test_a_lapsed_term_ends_at_the_lapse_not_when_the_report_is_taken(sched_plant):
    """A starved leader notices its lapse late (CI, stop 22: its term's end was the moment it got to
    run, after its successor's start, and the plant check saw overlapping terms). Its authority ended
    at the lapse (``leading`` and every command's fence), so the reported term ends there."""
    plant = sched_plant(machines=2)
    plant.advance(15)
    old = leader_of(plant)
    standby = plant.component("scheduler-1" if old.name == "scheduler-0" else "scheduler-0")
    lapse = old.elector.valid_until_time
    old.elector._timer.cancel()  # the renewals stop; no on_deposed (as if its loop never ran again: on a timer here)
    plant.run_until(lambda: standby.leading, timeout=10, step=0.1)
    plant.advance(20)
    (mine,), (theirs,) = old.report()["terms"][-1:], standby.report()["terms"][-1:]
    assert mine["to"] == lapse < theirs["from"] < old.ctx.clock.time() - 19


def test_a_heartbeat_delivered_while_start_still_subscribes_is_handled(sched_plant):
    """A broker delivers a backlog as soon as a subscription exists (a persistent session's queue, a
    group's uncommitted offsets): here a beat arrives right after the heartbeat subscription, while
    start() still awaits its other subscriptions. It must be handled, not dead-lettered (the pasta
    drill's AttributeError on _assigning, then the elector)."""
    beat = {"title": "heartbeat", "machineId": 7}
    with backlog_on_subscribe("scheduler", "on_heartbeat", "sched.machine_heartbeat", beat, key="7") as delivered:
        plant = sched_plant(machines=2)
    assert delivered == ["scheduler-0", "scheduler-1"]
    plant.advance(1)
    assert [letter.reason for letter in plant.dead_letters] == []
    for name in delivered:
        assert 7 in plant.component(name).machines, f"{name} knows machine 7 from the beat delivered during its start"
