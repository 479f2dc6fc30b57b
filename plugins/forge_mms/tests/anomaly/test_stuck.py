"""stuck: a window of (nearly) identical readings."""

from __future__ import annotations

RULE = {"name": "stuck", "type": "stuck", "kind": None, "window": 3, "epsilon": 0.0, "clear_after": 1}


def test_identical_values_in_a_row(judge):
    assert judge(RULE, [1, 2, 5, 5, 5, 5, 6]) == [(5, "raised", "warning"), (7, "cleared", "warning")]


def test_epsilon_and_hysteresis(judge):
    rule = {**RULE, "epsilon": 0.1, "hysteresis": 0.2}
    # spread 0.05: stuck; 0.25 is within epsilon + hysteresis: still stuck; 0.5: over
    assert judge(rule, [5.0, 5.05, 5.0, 5.25, 5.0, 5.5]) == [(3, "raised", "warning"), (6, "cleared", "warning")]


def test_any_kind_with_kind_null(judge):
    assert judge(RULE, [7, 7, 7], kind="energy") == [(3, "raised", "warning")]
