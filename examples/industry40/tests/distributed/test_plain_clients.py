"""Users without Forge during the distributed run: a plain MQTT factory (and its malformed beats), curl
posting and reading orders (and malformed bodies), a plain grpcio client reporting statuses (and bad reports)."""

from __future__ import annotations

import pytest
from i40_run import Run, query


@pytest.mark.slow
@pytest.mark.servers
def test_a_plain_mqtt_factory_appears_and_its_malformed_beats_are_dead_lettered(run: Run) -> None:
    user = run.user
    assert not user.errors, user.errors
    assert user.beats_9 >= 30 and user.bad_beats >= 5, user
    nine = [f for f in user.factories_seen if f["id"] == "9"]
    assert nine and nine[0]["status"] == "UP" and nine[0]["capacity"] == 10, user.factories_seen  # PMS's view
    # the MMS's view: factory 9's beats recorded, never DOWN while it beat, bad beats not counted as beats
    assert query(run, "SELECT count(*) FROM heartbeats WHERE factory_id = '9'")[0][0] >= 10
    events = [tuple(r) for r in query(run, "SELECT status, outcome FROM failover_events WHERE factory_id = '9'")]
    assert ("UP", "accepted") in events and not any(s == "DOWN" for s, _ in events), events
    assert query(run, "SELECT status FROM factory_status WHERE factory_id = '9'") == [("UP",)]
    letters = run.summary["dead_letters"]
    assert sum(letters.values()) >= user.bad_beats, letters
    print("\ndead letters by reason:", letters)


@pytest.mark.slow
@pytest.mark.servers
def test_a_plain_http_client_posts_and_reads_orders_and_bad_bodies_are_refused(run: Run) -> None:
    user = run.user
    [(status, order)] = user.posted
    assert status == 201 and order["quantity"] == 3 and order["status"] in ("assigned", "pending"), order
    assert user.replayed is not None and user.replayed[0] == 201 and user.replayed[1]["id"] == order["id"]
    assert user.read is not None and user.read[0] == 200 and user.read[1]["id"] == order["id"]
    expected = {"not json": (400, "body"), "repeated key": (400, "body"), "quantity 0": (422, "quantity"),
                "NUL in product_type": (422, "product_type"), "deadline without timezone": (422, "deadline"),
                "unknown field": (422, "priority")}
    got = {name: (status, body.get("field") if isinstance(body, dict) else body)
           for name, (status, body) in user.bad_rest.items()}
    assert got == expected
    assert query(run, "SELECT count(*) FROM orders WHERE quantity = 3 AND product_type = 'valve'")[0][0] >= 1
    assert query(run, "SELECT count(*) FROM orders WHERE quantity <= 0 OR product_type = 'a'")[0][0] == 0


@pytest.mark.slow
@pytest.mark.servers
def test_a_plain_grpc_client_reports_statuses_and_bad_reports_are_refused(run: Run) -> None:
    lines = run.user.grpc_lines
    assert len(lines) == 5, lines
    assert lines[0].startswith("OK True"), lines             # factory 9 UP, epoch 5 of lease 'plain'
    assert lines[1].startswith("OK True") and "new factory" in lines[1], lines  # an unknown factory is added
    assert lines[2].startswith("FAILED_PRECONDITION"), lines   # epoch 4 after 5: stale
    assert lines[3].startswith("INVALID_ARGUMENT") and "status" in lines[3], lines
    assert lines[4].startswith("INVALID_ARGUMENT") and "factory_id" in lines[4], lines
    new = run.user.grpc_new_factory
    assert query(run, f"SELECT status FROM factories WHERE id = '{new}'") == [("DOWN",)]
    assert query(run, f"SELECT count(*) FROM orders WHERE factory_id = '{new}'")[0][0] == 0
