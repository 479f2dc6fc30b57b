"""threshold: warning and critical levels, hysteresis, direction."""

from __future__ import annotations

import pytest
from forge_core import SettingsError

from forge_mms.settings import ThresholdRuleSettings

RULE = {"name": "temperature", "type": "threshold", "kind": "temperature", "warning": 80.0, "critical": 100.0,
        "hysteresis": 2.0, "clear_after": 1}


def test_warning_then_critical_then_back_down(judge):
    assert judge(RULE, [70, 81, 85, 101, 99, 97, 79, 77]) == [
        (2, "raised", "warning"),
        (4, "cleared", "warning"), (4, "raised", "critical"),  # escalation at once
        (6, "cleared", "critical"), (6, "raised", "warning"),  # 99 holds critical (> 98), 97 does not
        (8, "cleared", "warning")]  # 79 holds the warning (> 78), 77 clears it


def test_raised_once_while_the_condition_holds(judge):
    assert judge(RULE, [85, 90, 95, 88, 81]) == [(1, "raised", "warning")]


def test_clear_after_counts_readings_in_a_row(judge):
    rule = {**RULE, "clear_after": 3}
    # 70, 70, 85 (back up: the count starts again), then three calm readings
    assert judge(rule, [85, 70, 70, 85, 70, 70, 70]) == [(1, "raised", "warning"), (7, "cleared", "warning")]


def test_below_direction(judge):
    rule = {"name": "cold", "type": "threshold", "kind": "temperature", "warning": 5.0, "critical": 0.0,
            "direction": "below", "clear_after": 1}
    assert judge(rule, [10, 4, -1, 6]) == [(2, "raised", "warning"), (3, "cleared", "warning"),
                                           (3, "raised", "critical"), (4, "cleared", "critical")]


def test_a_single_level(judge):
    assert judge({"name": "hot", "type": "threshold", "kind": "temperature", "critical": 100.0, "clear_after": 1},
                 [99, 101, 100, 99]) == [(2, "raised", "critical"), (3, "cleared", "critical")]


@pytest.mark.parametrize(("levels", "says"), [
    ({}, "needs warning, critical or both"),
    ({"warning": 100.0, "critical": 80.0}, "must be below critical"),
    ({"warning": 0.0, "critical": 5.0, "direction": "below"}, "must be above critical")])
def test_levels_are_checked(levels, says):
    with pytest.raises(SettingsError, match=says):
        ThresholdRuleSettings.load({"name": "t", "type": "threshold", "kind": "temperature", **levels})
