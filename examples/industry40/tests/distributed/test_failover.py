"""The orders of a factory chaos stopped move off it within the detection bound plus one scheduling
pass of its last beat, and no assignment reaches it while it is silent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from i40_clients import Wiretap
from i40_run import DETECTION, FAILOVER, PASS, SLACK, Run, query


def epoch_seconds(value: datetime) -> float:
    """A stored time as epoch seconds (the scheduler stores UTC; SQLite drops the zone)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def held_at(tap: Wiretap, factory: str, at: float) -> set[str]:
    """Orders ``factory`` held at time ``at``, from the wire: assigned to it, not revoked or completed since."""
    held: set[str] = set()
    events = sorted(tap.json(rf"factory/{re.escape(factory)}/(orders|orders/revoked|completed)"))
    for t, topic, body in events:
        if t > at:
            break
        order = body.get("orderId")
        if topic.endswith("/orders") and body.get("factoryId") == factory:
            held.add(order)
        else:
            held.discard(order)
    return held


@pytest.mark.slow
@pytest.mark.servers
def test_orders_of_a_failed_factory_move_within_the_detection_bound_plus_one_pass(run: Run) -> None:
    """After a chaos stop, each order the factory held (from the wire) is moved off it in the database
    (factory_assignments.revoked_at: to another factory, or pending where no capacity was left)
    within DETECTION + PASS (+ slack) of its last beat on the wire, in the transaction that accepted
    the MMS's DOWN report; and no assignment reaches it while it is silent."""
    tap = run.tap
    kills = [t for t, _, body in tap.json(r"chaos/events") if body.get("action") == "kill"]
    stops = [(t, body["factoryId"]) for t, _, body in sorted(tap.json(r"factory/[^/]+/mode"))
             if body.get("mode") == "stop"]
    assert stops, "chaos stopped no factory with this seed"
    checked, late, figures = 0, [], []
    for stopped_at, factory in stops:
        beats = [t for t, _, _ in tap.json(rf"factory/{re.escape(factory)}/heartbeat")]
        last = max((t for t in beats if t <= stopped_at + 1.0), default=stopped_at)
        back = min((t for t in beats if t > stopped_at + 1.0), default=float("inf"))
        bound = DETECTION + PASS + SLACK
        if any(last - FAILOVER <= k <= last + bound for k in kills):
            bound += FAILOVER  # the MMS or PMS leader was being replaced meanwhile
        if back - last < DETECTION + PASS:
            continue  # recovered before the verdict could be due
        down = query(run, f"SELECT at, attempts FROM failover_events WHERE factory_id = '{factory}' AND status = "
                          f"'DOWN' AND outcome = 'accepted' AND at > {last} ORDER BY at LIMIT 1")
        for order in held_at(tap, factory, last):
            rows = query(run, f"SELECT revoked_at FROM factory_assignments WHERE order_id = '{order}' AND "
                              f"factory_id = '{factory}' AND assigned_at <= to_timestamp({last}) "
                              "ORDER BY assigned_at DESC LIMIT 1")  # the assignment it held at its last beat
            moved = epoch_seconds(rows[0][0]) if rows and rows[0][0] is not None else None
            if moved is not None and moved < last:
                continue  # completed before it stopped (the completion was on its way)
            checked += 1
            if moved is None:  # still open (a completion ends the assignment too): the DOWN never moved it
                late.append(f"{order} of {factory} (held at its last beat {last:.1f}) was never moved off it; "
                            f"DOWN accepted {down}")
                continue
            figures.append((moved - last, down[0][0] - last if down else None, down[0][1] if down else None))
            if moved - last > bound:
                late.append(f"{order} of {factory} moved {moved - last:.1f}s after the last beat (> {bound}); "
                            f"DOWN accepted {down}")
        assigned = [t for t, _, body in tap.json(rf"factory/{re.escape(factory)}/orders")
                    if last + bound < t < back and body.get("factoryId") == factory]
        assert not assigned, f"{factory} silent since {last:.1f} got assignments at {assigned}"
    assert not late, "\n".join(late)
    assert checked, f"no order was held by a stopped factory at its last beat ({len(stops)} stops): nothing checked"
    stuck = query(run, "SELECT o.id, o.factory_id FROM orders o JOIN factories f ON f.id = o.factory_id "
                       "WHERE f.status = 'DOWN' AND o.status <> 'completed'")
    assert not stuck, stuck
    if figures:
        worst = max(figures)
        print(f"\norders of stopped factories: {checked} held, {len(figures)} moved; slowest moved "
              f"{worst[0]:.2f}s after the last beat (DOWN accepted at +{worst[1]}, attempts {worst[2]})")
