"""Per sensor: which rules judge it, seq order, warm-up from history without raising again."""

from __future__ import annotations

from forge_mms.anomaly import ActiveAlert, RuleBook
from forge_mms.settings import SensorProcessorParams

RULES = [{"name": "hot", "type": "threshold", "kind": "temperature", "warning": 80.0, "clear_after": 2},
         {"name": "line2_hot", "type": "threshold", "kind": "temperature", "critical": 90.0, "sensors": ["l2-*"]},
         {"name": "stuck", "type": "stuck", "kind": None, "window": 3}]


def book() -> RuleBook:
    return RuleBook(SensorProcessorParams.load({"rules": RULES}).rules)  # type: ignore[arg-type]


def test_rules_by_kind_and_sensor_pattern():
    b = book()
    assert [r.settings.name for r in b.for_sensor("t-1", "temperature")] == ["hot", "stuck"]
    assert [r.settings.name for r in b.for_sensor("l2-t", "temperature")] == ["hot", "line2_hot", "stuck"]
    assert [r.settings.name for r in b.for_sensor("e-1", "energy")] == ["stuck"]
    assert b.history("t-1", "temperature") == 3


def test_a_warm_state_continues_where_the_stored_history_ends(make_reading):
    b = book()
    history = [make_reading(seq, v) for seq, v in enumerate([70, 85, 86], 1)]
    # as a processor that judged the readings: the alert of reading 2 is active
    warm = b.warm("temp-1", "temperature", history, {"hot": ActiveAlert("temp-1:hot:2", "warning", 2)}, last_seq=3)
    assert warm.last_seq == 3
    assert warm.observe(make_reading(4, 87)) == [], "the active alert is not raised again"
    events = warm.observe(make_reading(5, 60)) + warm.observe(make_reading(6, 60))
    assert [(e.alert_id, e.state) for e in events] == [("temp-1:hot:2", "cleared")], "and it is cleared"


def test_a_replayed_window_is_full(make_reading):
    b = book()
    warm = b.warm("temp-1", "temperature", [make_reading(1, 5.0), make_reading(2, 5.0)], {}, last_seq=2)
    assert [(e.rule, e.state) for e in warm.observe(make_reading(3, 5.0))] == [("stuck", "raised")]
