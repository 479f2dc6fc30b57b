"""The planner's choices, without a database."""

from __future__ import annotations

from forge_sched.orders.planner import FactoryLoad, pick, rebalance_moves


def test_pick_most_free_then_smallest_id_and_only_up():
    fs = [FactoryLoad("f3", 5, "UP", 1), FactoryLoad("f2", 5, "UP", 1), FactoryLoad("f1", 9, "DOWN", 0),
          FactoryLoad("f4", 9, "DEGRADED", 0)]
    assert pick(fs).id == "f2"  # f2 and f3 both have 4 free: the smaller id
    assert pick(fs, exclude="f2").id == "f3"
    assert pick([FactoryLoad("f1", 2, "UP", 2), FactoryLoad("f2", 0, "UP", 0)]) is None  # all full


def test_rebalance_evens_free_capacity_and_stops_before_swapping_roles():
    fs = [FactoryLoad("a", 4, "UP", 4), FactoryLoad("b", 4, "UP", 0)]
    moves = rebalance_moves(fs, {"a": ["o1", "o2", "o3", "o4"]})
    assert moves == [("o1", "a", "b"), ("o2", "a", "b")]
    assert [f.load for f in fs] == [2, 2]
    fs = [FactoryLoad("a", 4, "UP", 3), FactoryLoad("b", 4, "UP", 2)]
    assert rebalance_moves(fs, {"a": ["o1", "o2", "o3"]}) == [], "a gap of 1 would only swap the roles"


def test_rebalance_moves_only_what_is_movable_and_only_between_up_factories():
    fs = [FactoryLoad("a", 4, "UP", 4), FactoryLoad("b", 4, "DEGRADED", 0), FactoryLoad("c", 4, "UP", 3)]
    assert rebalance_moves(fs, {"a": ["o1"]}) == [], "c has 1 free, a 0: gap 1; b is not UP"
    fs = [FactoryLoad("a", 6, "UP", 6), FactoryLoad("c", 6, "UP", 0)]
    assert rebalance_moves(fs, {"a": ["o1"]}) == [("o1", "a", "c")], "in-progress orders (not listed) stay"
