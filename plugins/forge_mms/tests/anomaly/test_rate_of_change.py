"""rate_of_change: per second between consecutive readings; a time that does not advance gives no verdict."""

from __future__ import annotations

RULE = {"name": "rate", "type": "rate_of_change", "kind": "temperature", "limit": 10.0, "clear_after": 1}


def test_a_jump_raises_and_calm_clears(judge):
    assert judge(RULE, [70, 71, 90, 91, 92]) == [(3, "raised", "warning"), (4, "cleared", "warning")]


def test_per_second_by_the_timestamps(judge):
    # 30 degrees in 5 s is 6/s: no alert; in 1 s it is one
    assert judge(RULE, [70, 100], times=[0.0, 5.0]) == []
    assert judge(RULE, [70, 100], times=[0.0, 1.0]) == [(2, "raised", "warning")]


def test_a_clock_going_back_gives_no_verdict(judge):
    # a sensor's new life with an earlier clock: no division by a negative or zero time
    assert judge(RULE, [70, 100, 100], times=[100.0, 50.0, 50.0]) == []


def test_direction(judge):
    assert judge({**RULE, "direction": "rising"}, [90, 70]) == []
    assert judge({**RULE, "direction": "falling"}, [90, 70]) == [(2, "raised", "warning")]
