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


def test_min_dt_measures_the_change_over_a_sensible_time(judge):
    # ten readings a second with +-0.5 of noise: 1/0.1 s = 10/s from one reading to the next
    times = [i * 0.1 for i in range(40)]
    values = [50.0 + (0.5 if i % 2 else -0.5) for i in range(40)]
    assert judge(RULE, values, times=times) != [], "reading to reading, noise is a rate"
    assert judge({**RULE, "min_dt": 0.5}, values, times=times) == []
    spike = values[:20] + [80.0] + values[21:]
    assert judge({**RULE, "min_dt": 0.5}, spike, times=times)[0] == (21, "raised", "warning")


def test_min_dt_window_and_a_clock_going_back(make_reading):
    from forge_mms.anomaly import build_rule
    from forge_mms.settings import RateOfChangeRuleSettings

    rule = build_rule(RateOfChangeRuleSettings.load({**RULE, "min_dt": 1.0}))
    state = rule.fresh()
    verdicts = [rule.judge(state, make_reading(seq, 10.0 * seq, ts=seq * 0.4), None) for seq in range(1, 7)]
    assert verdicts[:3] == [None, None, None]  # 0.4 and 0.8 s back: nothing old enough yet
    assert verdicts[3].window.from_seq == 1 and round(verdicts[3].window.seconds, 6) == 1.2
    assert verdicts[5].window.from_seq == 3, "the newest reading at least 1 s older"
    assert rule.judge(state, make_reading(7, 0.0, ts=0.1), None) is None, "an earlier clock starts afresh"
