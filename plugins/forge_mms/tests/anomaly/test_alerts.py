"""The alert state machine: raise once, escalate at once, clear after clear_after, deterministic ids."""

from __future__ import annotations

from forge_mms.anomaly import AlertTracker, Verdict, Window


def verdict(severity):
    return Verdict(severity, 1.0, 0.0, Window(1, 1, 0.0), "")


def run(tracker, severities, make_reading):
    out = []
    for seq, severity in enumerate(severities, 1):
        out += [(e.alert_id, e.state, e.severity, e.raised_seq) for e in
                tracker.update(verdict(severity) if severity != "-" else None, make_reading(seq, 1.0))]
    return out


def test_escalation_and_de_escalation(make_reading):
    tracker = AlertTracker("hot", "threshold", clear_after=2)
    assert run(tracker, ["warning", "critical", "critical", "warning", "warning", None, None], make_reading) == [
        ("temp-1:hot:1", "raised", "warning", 1),
        ("temp-1:hot:1", "cleared", "warning", 1), ("temp-1:hot:2", "raised", "critical", 2),
        ("temp-1:hot:2", "cleared", "critical", 2), ("temp-1:hot:5", "raised", "warning", 5),
        ("temp-1:hot:5", "cleared", "warning", 5)]
    assert tracker.active is None


def test_no_verdict_changes_nothing(make_reading):
    tracker = AlertTracker("rms", "rms", clear_after=2)
    assert run(tracker, ["warning", None, "-", "-", "warning", None, "-", None], make_reading) == [
        ("temp-1:rms:1", "raised", "warning", 1), ("temp-1:rms:1", "cleared", "warning", 1)]


def test_a_cleared_message_repeats_the_raised_id_and_carries_the_clearing_reading(make_reading):
    tracker = AlertTracker("hot", "threshold", clear_after=1)
    raised = tracker.update(verdict("critical"), make_reading(7, 101.0))[0].payload()
    cleared = tracker.update(verdict(None), make_reading(9, 50.0))[0].payload()
    assert raised["alert_id"] == cleared["alert_id"] == "temp-1:hot:7"
    assert (raised["state"], raised["reading_seq"], raised["raised_seq"]) == ("raised", 7, 7)
    assert (cleared["state"], cleared["reading_seq"], cleared["raised_seq"]) == ("cleared", 9, 7)
