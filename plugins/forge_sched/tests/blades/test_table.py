"""The machine table: counts follow every blade change; balanced assignment, rebalance, expiry."""

from __future__ import annotations

from forge_sched.blades.table import Machine, MachineTable


def table_with(*blades: str | None) -> MachineTable:
    t = MachineTable()
    for mid, blade in enumerate(blades):
        m = t.machines[mid] = Machine(mid, float(mid))
        if blade is None:
            t.waiting.add(mid)
        else:
            t.set_blade(m, blade, confirmed=True)
    return t


def test_assignments_alternate_and_keep_counts() -> None:
    t = table_with("A", None, None, None)
    plan = t.plan_assignments(now=10.0)
    assert [(m.id, b) for m, b in plan] == [(1, "B"), (2, "A"), (3, "B")]
    assert t.counts == {"A": 2, "B": 2} and not t.waiting
    assert all(m.pending == "assign" and m.pending_since == 10.0 and m.state == "ASSIGNED" for m, _ in plan)


def test_a_second_assignment_without_swap_is_recorded() -> None:
    t = table_with(None)
    t.plan_assignments(now=0.0)
    t.set_blade(t.machines[0], None, confirmed=False)
    t.waiting.add(0)
    t.plan_assignments(now=1.0)
    assert t.double_assignments == [0]


def test_rebalance_swaps_the_freshest_machines_until_within_one() -> None:
    t = table_with("A", "A", "A", "A", "B")
    swaps = t.plan_rebalance(now=5.0)
    assert [(m.id, b) for m, b in swaps] == [(3, "B")]      # most recent heartbeat first
    assert t.counts == {"A": 3, "B": 2}
    assert t.machines[3].state == "SWAPPING" and not t.machines[3].assigned


def test_unconfirmed_assignment_expires_into_a_retry_swap_only_clears() -> None:
    t = table_with(None, "A")
    t.plan_assignments(now=0.0)
    t.plan_swap(t.machines[1], "B", now=0.0)
    assert t.expire_unconfirmed(now=1.0, confirm_timeout=2.0) == 0
    assert t.expire_unconfirmed(now=2.0, confirm_timeout=2.0) == 1
    assert t.machines[0].blade is None and 0 in t.waiting and not t.machines[0].assigned
    assert t.machines[1].pending is None and t.machines[1].blade == "B"
    assert t.counts == {"A": 0, "B": 1}


def test_remove_gives_back_the_blade() -> None:
    t = table_with("A", "B")
    assert t.remove(0) is not None and t.remove(0) is None
    assert t.counts == {"A": 0, "B": 1}


def test_command_seen_mirrors_assign_and_swap() -> None:
    t = MachineTable()
    t.command_seen(7, "A", "assign", now=1.0)
    t.command_seen(7, "B", "swap", now=2.0)
    m = t.machines[7]
    assert (m.blade, m.pending, m.pending_since, m.assigned) == ("B", "swap", 2.0, False)
    assert t.counts == {"A": 0, "B": 1}


def test_merge_resumes_unknown_and_unconfirmed_machines_newer_beats_win() -> None:
    old = table_with("A", None)
    old.plan_assignments(now=3.0)                            # machine 1 assigned B, unconfirmed
    mine = MachineTable()
    mine.machines[1] = Machine(1, last_beat=9.0)
    mine.waiting.add(1)
    assert mine.merge(old.to_json()) == 2
    assert mine.machines[1].blade == "B" and mine.machines[1].pending == "assign" and 1 not in mine.waiting
    assert mine.machines[1].last_beat == 9.0
    assert mine.counts == {"A": 1, "B": 1}


def test_a_mirrored_reassignment_is_counted_not_judged_but_my_own_after_it_is() -> None:
    """A standby sees the leader's assigns on one topic and the machines' recovery beats on another,
    in no order against each other (CI: a restarted standby replayed assign, assign, then the
    beats, and failed 'no machine assigned twice'). Two mirrored assigns are counted, not a double;
    this scheduler's own assignment of a machine assigned before without a recovery is one."""
    t = MachineTable()
    t.command_seen(0, "A", "assign", now=1.0)
    t.command_seen(0, "A", "assign", now=2.0)
    assert t.double_assignments == [] and t.mirrored_reassignments == 1 and t.machines[0].assigned
    t.set_blade(t.machines[0], None, confirmed=False)
    t.waiting.add(0)
    t.plan_assignments(now=3.0)
    assert t.double_assignments == [0]
