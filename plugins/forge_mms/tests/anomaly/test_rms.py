"""rms: the RMS of a full window against a limit."""

from __future__ import annotations

import math

from forge_mms.anomaly import build_rule
from forge_mms.settings import RmsRuleSettings

RULE = {"name": "vibration_rms", "type": "rms", "kind": "vibration", "window": 4, "limit": 5.0, "clear_after": 1}


def test_no_verdict_until_the_window_is_full(judge):
    assert judge(RULE, [9, 9, 9], kind="vibration") == []
    assert judge(RULE, [9, 9, 9, 9], kind="vibration") == [(4, "raised", "warning")]


def test_a_burst_raises_once_and_clears_when_it_has_left_the_window(judge):
    values = [2, 2, 2, 2, 8, 8, 8, 2, 2, 2, 2]
    # rms over 4: [2,2,2,8]=4.36, [2,2,8,8]=5.83 raise, [8,8,8,2]=7.0, [8,8,2,2]=5.83, [8,2,2,2]=4.36 clear
    assert judge(RULE, values, kind="vibration") == [(6, "raised", "warning"), (10, "cleared", "warning")]


def test_the_measure_and_window(make_reading):
    rule = build_rule(RmsRuleSettings.load({**RULE, "severity": "critical"}))
    state = rule.fresh()
    verdicts = [rule.judge(state, make_reading(seq, v, kind="vibration"), None) for seq, v in enumerate([3, 4, 3, 4], 1)]
    last = verdicts[-1]
    assert verdicts[:3] == [None, None, None] and last is not None
    assert math.isclose(last.value, math.sqrt((9 + 16 + 9 + 16) / 4)) and last.severity is None
    assert last.window.as_dict() == {"from_seq": 1, "to_seq": 4, "seconds": 3.0}
    assert rule.judge(state, make_reading(5, 12, kind="vibration"), None).severity == "critical"
