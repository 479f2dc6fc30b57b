"""Reading beats: the factory id, failed beats (new errors, timeouts), the error rate over a window."""

from __future__ import annotations

import pytest
from forge_core import Envelope

from forge_mms.monitoring.beats import BeatHistory, BeatRefused, factory_of


def envelope(payload, topic="factory/f7/heartbeat", key=None):
    return Envelope("mms.factory_heartbeat", payload, source="x", key=key, topic=topic)


def body(errors=0.0, t=0.0, **extra):
    return {"timestamp": t, "metrics": {"errors": errors}, **extra}


def test_the_factory_id_from_the_payload_else_the_key_else_the_topic_level():
    assert factory_of(envelope({"factoryId": "f1", **body()}, key="k"), 1) == "f1"
    assert factory_of(envelope(body(), key="k"), 1) == "k"
    assert factory_of(envelope(body()), 1) == "f7"


@pytest.mark.parametrize(("payload", "level", "words"), [
    ({"factoryId": "a/b"}, 1, "factoryId"),
    ({"factoryId": "+"}, 1, "factoryId"),
    ({}, None, "no factory id"),
    ({}, 5, "no factory id"),
])
def test_an_id_that_is_no_topic_level_is_refused_naming_where_it_came_from(payload, level, words):
    with pytest.raises(BeatRefused, match=words):
        factory_of(envelope({**body(), **payload}), level)


def test_a_cumulative_counter_fails_a_beat_when_it_rises_and_a_reset_counts_what_is_new():
    history = BeatHistory(60, late_after=1.5)
    first = history.add("f", 0.0, body(errors=5))
    assert first.new_errors == 0 and not first.failed, "a counter's first reading says nothing"
    assert not history.add("f", 1.0, body(errors=5)).failed
    rising = history.add("f", 2.0, body(errors=7))
    assert rising.new_errors == 2 and rising.failed
    reset = history.add("f", 3.0, body(errors=1))
    assert reset.new_errors == 1 and reset.failed


def test_a_count_per_beat_fails_a_beat_when_above_zero():
    history = BeatHistory(60, late_after=1.5, errors="per_beat")
    assert not history.add("f", 0.0, body(errors=0)).failed
    assert history.add("f", 1.0, body(errors=2)).failed
    assert history.add("f", 2.0, body(errors=2)).failed


def test_a_late_beat_is_a_timeout_and_fails():
    history = BeatHistory(60, late_after=1.5)
    history.add("f", 0.0, body())
    assert not history.add("f", 1.5, body()).late, "exactly late_after is on time"
    late = history.add("f", 3.1, body())
    assert late.late and late.failed and late.gap == pytest.approx(1.6)


def test_error_rate_is_failed_beats_over_beats_in_the_window():
    history = BeatHistory(60, late_after=1.5)
    for t in range(10):  # beats at 0..9; errors rise at 7, 8, 9
        history.add("f", float(t), body(errors=max(0, t - 6)))
    assert history.calculate_error_rate("f", 100, 9.0) == pytest.approx(3 / 10)
    assert history.calculate_error_rate("f", 4, 9.0) == pytest.approx(3 / 5), "beats at 5..9"
    assert history.calculate_error_rate("f", 2, 9.0) == pytest.approx(1.0)
    assert history.calculate_error_rate("other", 10, 9.0) == 0.0


def test_the_history_keeps_its_horizon_only():
    history = BeatHistory(5, late_after=1.5)
    for t in range(20):
        history.add("f", float(t), body(t=float(t)))
    assert [b.at for b in history.beats("f", 100, 19.0)] == [14.0, 15.0, 16.0, 17.0, 18.0, 19.0]
    assert history.last("f").timestamp == 19.0 and history.factories() == ["f"]


def test_expires_by_tells_whether_advance_would_drop_a_beat():
    history = BeatHistory(300, late_after=1.5)
    window = history.window("f", 5.0, 0.0)
    assert not window.expires_by(100.0), "an empty window has nothing to drop"
    for at in (1.0, 2.0, 3.0):
        history.add("f", at, {"timestamp": at, "metrics": {}})
    assert not window.expires_by(6.0)  # 1.0 is not before 6.0 - 5.0
    assert window.expires_by(6.5)
    version = window.version
    window.advance(6.0)
    assert window.version == version and len(window) == 3
    window.advance(6.5)
    assert window.version != version and len(window) == 2 and not window.expires_by(6.5)
