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


GOOD = {"blade": "A", "last_beat": 5.0, "state": "WORKING", "confirmed": True, "pending": None, "pending_since": 0.0,
        "assigned": True}


def test_bad_records_in_a_saved_state_are_skipped_with_their_reason_never_raised() -> None:
    """A state saved before integers were integers (a phantom machine 1.23e29) or corrupted in the
    store: each bad record is reported and skipped, the good ones are resumed."""
    saved = {
        "machines": {
            "3": GOOD,
            "1.2345678901234568e+29": GOOD,                 # the phantom of issue 11
            "9223372036854775808": GOOD,                    # beyond int64
            "-1": GOOD, "seven": GOOD, "4": "not a record", "5": {**GOOD, "blade": "C"},
            "6": {**GOOD, "last_beat": "soon"}, "7": {**GOOD, "pending": "dance"},
            "8": {**GOOD, "last_beat": float("nan")}, "9": {**GOOD, "confirmed": "yes"},
        },
        "cooldown_until": {"fresh": "later", "blade": 30.0},
        "offsets": {"heartbeats": "1e3", "alerts": 2, "deaths": 1.5},
        "fresh_amount": "lots",
        "last_alert_id": 17,
    }
    mine = MachineTable()
    cooldown: dict[str, float] = {}
    offsets: dict[str, int] = {"heartbeats": 4}
    rejected: list[tuple[str, str]] = []
    fresh, last_alert, resumed = merge(saved, mine, fresh_amount=4, cooldown_until=cooldown, offsets=offsets,
                                       last_alert_id=None, rejected=rejected)
    assert (fresh, last_alert, resumed) == (4, None, 1)
    assert list(mine.machines) == [3] and mine.counts == {"A": 1, "B": 0}
    assert cooldown == {"blade": 30.0} and offsets == {"heartbeats": 4, "alerts": 2}
    where = {path for path, _why in rejected}
    assert where == {"machines/1.2345678901234568e+29", "machines/9223372036854775808", "machines/-1",
                     "machines/seven", "machines/4", "machines/5", "machines/6", "machines/7", "machines/8",
                     "machines/9", "cooldown_until/fresh", "offsets/heartbeats", "offsets/deaths", "fresh_amount",
                     "last_alert_id"}, rejected
    assert all(why for _path, why in rejected)


def test_a_saved_state_that_is_not_an_object_is_rejected_whole() -> None:
    rejected: list[tuple[str, str]] = []
    for saved in (["a"], {"machines": ["a"]}, {"machines": None, "offsets": 3}):
        mine = MachineTable()
        assert merge(saved, mine, fresh_amount=4, cooldown_until={}, offsets={}, last_alert_id="x",  # type: ignore[arg-type]
                     rejected=rejected) == (4, "x", 0)
    assert [path for path, _ in rejected] == ["/", "machines", "offsets"]
