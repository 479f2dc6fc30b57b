"""industry40.drains: a factory at HIGH risk that fails still holding not-yet-started orders while another
factory had room is a violation; orders already started, or no room anywhere, are not."""

from __future__ import annotations

from industry40.drains import DrainWatch


def watch() -> DrainWatch:
    w = DrainWatch(lambda factory: 2, grace=5.0)
    w.assigned("f1", "o1", 0.0)
    w.assigned("f1", "o2", 0.0)
    w.started("f1", "o1")
    w.assigned("f2", "o3", 0.0)
    w.risk("f1", "HIGH", 10.0)
    return w


def test_unstarted_orders_left_on_a_failed_high_risk_factory_with_room_elsewhere_fail_the_check() -> None:
    w = watch()
    w.drain_due("f1", down=set())
    w.failed("f1", 30.0, down=set())
    check = w.check()
    assert not check.passed and "o2" in check.detail and "room for 1" in check.detail


def test_a_drained_factory_or_one_without_room_elsewhere_passes() -> None:
    drained = watch()
    drained.drain_due("f1", down=set())
    drained.gone("f1", "o2")                      # revoked: the PMS moved it
    drained.assigned("f2", "o2", 15.0)
    drained.failed("f1", 30.0, down=set())
    assert drained.check().passed and drained.drained_ok == 1
    full = watch()
    full.assigned("f2", "o4", 1.0)                # f2 is full: 2 of 2
    full.drain_due("f1", down=set())
    full.failed("f1", 30.0, down=set())
    assert full.check().passed and full.no_room == 1


def test_only_a_failure_after_the_grace_of_a_high_risk_is_judged() -> None:
    w = watch()
    w.failed("f1", 12.0, down=set())              # 2 s after HIGH: not yet due
    w.risk("f2", "HIGH", 0.0)
    w.risk("f2", "LOW", 3.0)                      # fell back: no drain asked
    w.failed("f2", 30.0, down=set())
    assert w.judged == 0 and w.check().passed
