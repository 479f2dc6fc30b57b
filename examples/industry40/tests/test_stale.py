"""industry40.stale: a deposed MMS leader's report is replayed once the PMS accepted a newer epoch; the
check fails when a replay is accepted, or when there was one to make and none was refused."""

from __future__ import annotations

from industry40.stale import StaleReplays


def event(factory: str, status: str, epoch: int, outcome: str = "accepted") -> dict[str, object]:
    return {"factoryId": factory, "status": status, "reason": "r", "epoch": epoch, "outcome": outcome}


def test_a_newer_epochs_accepted_report_asks_for_the_older_ones_replay() -> None:
    s = StaleReplays()
    assert s.reported(event("f1", "DOWN", 3)) is None
    assert s.reported(event("f2", "UP", 3)) is None
    assert s.reported(event("f1", "UP", 4, outcome="rejected")) is None  # not accepted: no newer epoch seen
    replay = s.reported(event("f1", "UP", 4))
    assert replay is not None and (replay.factory, replay.status, replay.epoch, replay.newer) == ("f2", "UP", 3, 4)
    assert s.reported(event("f1", "DOWN", 3)) is None  # an older epoch's late event
    s.answered(replay, False, "stale_epoch", "stale epoch 3")
    check = s.check()
    assert check.passed and check.detail.startswith("1 stale reports rejected, 0 accepted")


def test_an_accepted_replay_fails() -> None:
    s = StaleReplays()
    s.reported(event("f1", "DOWN", 3))
    replay = s.reported(event("f1", "UP", 4))
    assert replay is not None
    s.answered(replay, True, "ok", "f1 DOWN; 2 orders moved")
    check = s.check()
    assert not check.passed and "epoch 3 accepted after epoch 4" in check.detail


def test_a_run_that_had_a_replay_to_make_and_no_refusal_fails() -> None:
    s = StaleReplays()
    s.reported(event("f1", "DOWN", 3))
    replay = s.reported(event("f1", "UP", 4))
    assert replay is not None
    s.lost(replay, "TimeoutError: no answer")
    check = s.check()
    assert not check.passed and "1 deposed MMS epochs to replay but no replay was refused" in check.detail
    assert StaleReplays().check().passed  # no MMS failover: nothing to replay
