"""The order scheduler's pass reads the database for work only after a write of this process or once
``probe_every`` s passed (a TestPlant: virtual time, memory bus, SQLite, two replicas)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from forge_core.storage import create_engine_from_url

from forge_sched.orders.tables import orders

from . import test_order_scheduler as scheduler_tests
from .test_order_scheduler import leader, rest, running

plant = scheduler_tests.plant  # the fixture: a TestPlant of two replicas with these params

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def count_probes(p: Any) -> list[str]:
    """Every probe of either replica, by replica name, from now on."""
    seen: list[str] = []
    for component in running(p):
        def counted(service: Any = component.service, name: str = component.name) -> tuple[bool, bool]:
            seen.append(name)
            return type(service).probe(service)
        component.service.probe = counted
    return seen


def test_idle_passes_skip_the_read_until_a_write_or_probe_every(plant):
    p = plant({"capacities": {"f1": 2}, "probe_every": 4.0})
    p.advance(3)
    probes = count_probes(p)
    p.advance(3.5)  # passes every 1 s, nothing written since each replica's last read found nothing
    assert len(probes) <= 2, probes  # at most one safety read each (probe_every 4 s ends within the 3.5 s)
    p.advance(5)
    assert 2 <= len(probes) <= 6, probes  # the safety read at least once each, not every pass

    seen = len(probes)
    r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    p.advance(1.0)
    assert len(probes[seen:]) == 1, "a commit in this process makes a replica read; it found no work: for both"


def test_a_read_that_found_no_work_answers_for_the_other_replica_until_the_next_commit(plant):
    p = plant({"capacities": {"f1": 1}, "probe_every": 100.0})
    p.advance(3)
    probes = count_probes(p)
    order = {"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"}
    assert rest(p, "POST", "/orders", json=order).json()["status"] == "assigned"
    p.advance(1.0)
    assert len(probes) == 1, probes  # the order placed and its messages relayed: nothing for the other replica
    p.advance(3.0)
    assert len(probes) == 1, probes
    assert rest(p, "POST", "/orders", json=order).json()["status"] == "pending"  # f1 is full
    p.advance(1.0)
    assert sorted(probes[1:]) == ["pms-0", "pms-1"], "a pending order found is work: each replica reads for itself"


def test_progress_alone_makes_no_read(plant):
    p = plant({"capacities": {"f1": 2}, "probe_every": 100.0})
    p.advance(3)
    r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"})
    p.advance(3)
    probes = count_probes(p)
    for n in range(5):
        p.publish("factory/f1/progress", "sched.order_progress",
                  {"orderId": r.json()["id"], "factoryId": "f1", "progress": 0.1 * (n + 1)})
        p.advance(1)
    assert probes == []
    assert rest(p, "GET", f"/orders/{r.json()['id']}").json()["status"] == "in_progress"


def test_another_processs_pending_order_is_placed_within_probe_every(plant, tmp_path):
    p = plant({"capacities": {"f1": 2}, "probe_every": 4.0})
    p.advance(3)
    other = create_engine_from_url(f"sqlite:///{tmp_path}/p0/plant.db")  # another process's writer
    try:
        with other.begin() as conn:
            conn.execute(orders.insert().values(id="elsewhere", product_type="gear", quantity=1, deadline=NOW,
                                                status="pending", progress=0.0, created_at=NOW, updated_at=NOW,
                                                completions=0))
    finally:
        other.dispose()
    p.advance(4.0 + 1.0)  # probe_every, then the next pass
    assert rest(p, "GET", "/orders/elsewhere").json()["status"] == "assigned"
    assert [e.payload["orderId"] for e in p.sent(type="sched.order_assigned")] == ["elsewhere"]
    assert leader(p).leading


def test_pending_orders_without_capacity_make_no_read_a_pass_until_capacity_can_appear(plant, tmp_path):
    p = plant({"capacities": {"f1": 1}, "probe_every": 4.0})
    p.advance(3)
    ids = []
    for _ in range(2):
        r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"})
        ids.append(r.json()["id"])
    p.advance(2)
    assert [rest(p, "GET", f"/orders/{i}").json()["status"] for i in ids] == ["assigned", "pending"]
    probes = count_probes(p)
    p.advance(3.5)
    assert len(probes) <= 2, probes  # the pending order waits for capacity: no read (and placement) a pass

    other = create_engine_from_url(f"sqlite:///{tmp_path}/p0/plant.db")  # capacity raised by another process
    try:
        with other.begin() as conn:
            conn.exec_driver_sql("UPDATE factories SET capacity = 2 WHERE id = 'f1'")
    finally:
        other.dispose()
    p.advance(4.0 + 1.0)
    assert rest(p, "GET", f"/orders/{ids[1]}").json()["status"] == "assigned"

    p.publish("factory/f1/completed", "sched.order_completed", {"orderId": ids[0], "factoryId": "f1"})
    r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"})
    p.advance(0.5)
    assert rest(p, "GET", f"/orders/{r.json()['id']}").json()["status"] == "assigned"
