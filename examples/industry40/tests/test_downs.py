"""industry40.downs: an order a DOWN factory still holds past the bound, or one assigned to it between its
DOWN and its next UP once the PMS applied the DOWN, fails the check; moves in time, and a later origin
where a failover delayed the verdict or the PMS, pass."""

from __future__ import annotations

from industry40.downs import MOVED, NOT_ASSIGNED, Bound, DownWatch

BOUND = Bound(max_gap=3.0, check_every=1.0, schedule_interval=1.0, report_retry=10.0)


def watch() -> DownWatch:
    w = DownWatch(BOUND)
    w.assigned("f1", "o1", 0.0)
    w.assigned("f1", "o2", 0.0)
    w.assigned("f2", "o3", 0.0)
    w.beat("f1", 10.0)
    w.beat("f2", 10.0)
    return w


def checks(w: DownWatch) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.passed, c.detail) for c in w.checks()}


def test_orders_moved_by_the_last_beat_plus_max_gap_check_and_pass_pass() -> None:
    w = watch()
    down = w.status("f1", "DOWN", 13.0)
    assert down is not None and down.due == 15.0 and down.waiting == {"o1", "o2"}
    w.gone("f1", "o1", 13.0)  # revoked: the DOWN report's transaction
    w.assigned("f2", "o1", 13.0)
    w.gone("f1", "o2", 14.5)  # completed meanwhile, or moved by the next pass
    w.judge("f1", 15.001)
    passed, detail = checks(w)[MOVED]
    assert passed and detail.startswith("2 orders of 1 DOWN verdicts moved within last beat + max_gap 3 s")
    assert "= 5 s" in detail and "slowest 4.500 s" in detail


def test_an_order_still_held_at_the_bound_fails() -> None:
    w = watch()
    w.status("f1", "DOWN", 13.0)
    w.gone("f1", "o1", 13.0)
    w.judge("f1", 15.001)  # o2 never moved
    passed, detail = checks(w)[MOVED]
    assert not passed and "still held 1 orders (o2)" in detail and "from the last beat 10.000" in detail


def test_an_order_moved_after_the_bound_fails() -> None:
    w = watch()
    w.status("f1", "DOWN", 13.0)
    w.gone("f1", "o1", 13.0)
    w.gone("f1", "o2", 16.0)
    w.judge("f1", 16.5)
    passed, detail = checks(w)[MOVED]
    assert not passed and "o2 left DOWN f1 at 16.000, 1.000 s past its bound 15.000" in detail


def test_a_late_verdict_is_the_origin_and_a_pms_failover_the_takeover() -> None:
    w = watch()
    late = w.status("f1", "DOWN", 20.0)  # a successor MMS judged at its takeover
    assert late is not None and late.origin == "verdict" and late.due == 21.0
    w.pms_lost(20.5)  # chaos killed the PMS leader before it applied the DOWN
    assert late.due == float("inf")
    assert w.pms_elected(27.0) == [late] and late.due == 27.0 + 10.0 + 1.0
    w.gone("f1", "o1", 30.0)
    w.gone("f1", "o2", 30.0)
    w.judge("f1", 38.001)
    assert checks(w)[MOVED][0] and "1 from a PMS takeover" in checks(w)[MOVED][1]


def test_a_down_reported_by_a_successor_without_a_verdict_message_is_judged_too() -> None:
    w = watch()
    assert w.reported("f1", "DOWN", 30.0) is not None  # no forge.status: judged while it shadowed
    w.judge("f1", 31.001)
    assert not checks(w)[MOVED][0]


def test_an_assignment_to_a_down_factory_after_the_pms_applied_the_down_fails() -> None:
    w = watch()
    w.status("f1", "DOWN", 13.0)
    w.gone("f1", "o1", 13.0)  # the PMS applied the DOWN
    w.gone("f1", "o2", 13.0)
    w.assigned("f1", "o4", 20.0)  # ... and still gave it an order
    w.status("f1", "UP", 30.0)
    w.assigned("f1", "o5", 31.0)  # UP again: fine
    passed, detail = checks(w)[NOT_ASSIGNED]
    assert not passed and "o4 assigned to f1 at 20.000, DOWN since 13.000" in detail and "o5" not in detail


def test_an_assignment_before_the_pms_knew_must_move_with_the_others() -> None:
    w = watch()
    w.status("f2", "DOWN", 13.0)
    w.assigned("f2", "o9", 13.2)  # the report not applied yet: allowed, but it must move
    w.gone("f2", "o3", 13.3)
    w.judge("f2", 15.001)
    assert checks(w)[NOT_ASSIGNED][0]
    assert not checks(w)[MOVED][0] and "o9" in checks(w)[MOVED][1]


def test_an_up_reported_by_a_successor_ends_the_down() -> None:
    w = watch()
    w.status("f1", "DOWN", 13.0)
    w.gone("f1", "o1", 13.0)
    w.gone("f1", "o2", 13.0)
    w.reported("f1", "UP", 40.0)  # the successor's report: no forge.status UP was published
    w.assigned("f1", "o6", 41.0)
    assert checks(w)[NOT_ASSIGNED][0]
