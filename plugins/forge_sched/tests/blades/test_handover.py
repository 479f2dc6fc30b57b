"""The state a leader hands over: a snapshot round-trips; the merge keeps the later of each field."""

from __future__ import annotations

import json

from forge_sched.blades.handover import merge, snapshot
from forge_sched.blades.table import Machine, MachineTable


def test_snapshot_is_json_and_merges_into_an_empty_replica() -> None:
    t = MachineTable()
    m = t.machines[3] = Machine(3, 1.0)
    t.set_blade(m, "A", confirmed=True)
    saved = json.loads(json.dumps(snapshot(t, fresh_amount=6, cooldown_until={"fresh": 40.0},
                                           offsets={"heartbeats": 10, "alerts": 1}, last_alert_id="a1")))
    mine = MachineTable()
    cooldown: dict[str, float] = {"fresh": 50.0, "blade": 5.0}
    offsets = {"heartbeats": 12, "alerts": 0}
    fresh, last_alert, resumed = merge(saved, mine, fresh_amount=4, cooldown_until=cooldown, offsets=offsets,
                                       last_alert_id=None)
    assert (fresh, last_alert, resumed) == (6, "a1", 1)
    assert mine.counts == {"A": 1, "B": 0} and mine.machines[3].confirmed
    assert cooldown == {"fresh": 50.0, "blade": 5.0}
    assert offsets == {"heartbeats": 12, "alerts": 1}


def test_merge_of_an_empty_state_keeps_own_values() -> None:
    mine = MachineTable()
    assert merge({}, mine, fresh_amount=4, cooldown_until={}, offsets={}, last_alert_id="mine") == (4, "mine", 0)
