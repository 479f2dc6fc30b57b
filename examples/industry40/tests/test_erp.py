"""The ERP exchange in the embedded plant under virtual time: B2MML schedules dropped into inbox/ and
POSTed to the plant's HTTP app become orders once (idempotency keys from the B2MML IDs), Change /
Cancel / Get reach the PMS and are answered, completed orders come out of outbox/ as validated
performance documents exactly once; with chaos, every imported request is accounted for."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from forge_b2mml import build_schedule, load, wrap_verb
from industry40.testing import registered_types
from lxml import etree

pytestmark = pytest.mark.skipif(
    not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor", "b2mml.drop_folder"},
    reason="forge-sched, forge-mms or forge-b2mml missing")

QUIET = {"clients": {"enabled": False}, "erp": {"enabled": False}}
REQUEST = {"request_id": "PR-1", "start_time": "2030-01-01T06:00:00Z", "end_time": "2030-01-02T06:00:00Z",
           "process_segment_id": "ASSEMBLY", "material_definition_id": "gearbox", "quantity": 4, "unit": "EA"}


def schedule(*requests: dict, schedule_id: str = "PS-1") -> bytes:
    return build_schedule(list(requests), version="V0600", schedule_id=schedule_id,
                          published="2030-01-01T05:00:00Z")


def drop(plant, name: str, data: bytes) -> None:
    inbox = plant.manifest.plant_dir / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / f".{name}").write_bytes(data)
    os.replace(inbox / f".{name}", inbox / name)


def post(plant, data: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plant.runtime.http.app),
                                     base_url="http://plant") as client:
            return await client.post("/b2mml/schedule", content=data, headers={"Content-Type": "application/xml"})

    return plant._run(go())


def verb(verb: str, data: bytes, bodid: str) -> bytes:
    return wrap_verb(verb, etree.tostring(etree.fromstring(data)), version="V0600", bodid=bodid,
                     created="2030-01-01T07:00:00Z", sender="SAP")


def created(plant) -> list[dict]:
    return [e.payload for e in plant.sent("orders/created", type="sched.order_created")]


def outbox(plant, prefix: str = "PERF-") -> list[Path]:
    folder = plant.manifest.plant_dir / "outbox"
    return sorted(folder.glob(f"{prefix}*.xml")) if folder.is_dir() else []


def checks_pass(plant) -> dict[str, str]:
    summary = plant.stop()
    failed = [(c.name, c.detail) for c in summary.checks if not c.passed]
    assert not failed, failed
    return {c.name: c.detail for c in summary.checks if c.component == "erp_link"}


def test_a_schedule_by_folder_and_again_by_http_makes_one_order_exported_once(plant40):
    plant = plant40(params=QUIET, drop=("chaos",))
    plant.advance(5)
    doc = schedule(REQUEST, {**REQUEST, "request_id": "PR-2", "quantity": 2})
    drop(plant, "ps-1.xml", doc)
    plant.advance(6)
    answer = post(plant, doc)                                  # the same schedule again, over HTTP
    assert answer.status_code == 202 and answer.json()["duplicates"] == 2 and answer.json()["messages"] == 0
    plant.advance(5)
    orders = created(plant)
    assert sorted((o["productType"], o["quantity"]) for o in orders) == [("gearbox", 2), ("gearbox", 4)]
    plant.advance(120)                                          # made: 2 s setup + 0.5 s a unit
    done = {e.payload["orderId"] for e in plant.sent("factory/+/completed", type="sched.order_completed")}
    assert done == {o["orderId"] for o in orders}
    files = outbox(plant)
    assert [f.name for f in files] == sorted(f"PERF-{o['orderId']}.xml" for o in orders)
    for path in files:
        doc = load(path.read_bytes(), max_bytes=10**7)
        assert (doc.verb, doc.noun) == ("Process", "ProductionPerformance")
        response = doc.root.find(".//{*}ProductionResponse")
        assert response.findtext("{*}ProductionRequestID") in ("PR-1", "PR-2")
    assert (plant.manifest.plant_dir / "inbox" / "processed" / "ps-1.xml").exists()
    details = checks_pass(plant)
    assert details["every completed ERP order exported exactly once"].startswith("2 exported")


def test_change_cancel_and_get_reach_the_pms_and_are_answered(plant40):
    plant = plant40(params={**QUIET, "factory": {"lines": 1, "setup_time": 30.0}}, drop=("chaos",), keep=None)
    plant.advance(5)
    first = {**REQUEST, "quantity": 40}
    busy = [{**REQUEST, "request_id": f"PR-B{i}", "quantity": 40} for i in range(4)]
    doc = schedule(first, *busy, {**REQUEST, "request_id": "PR-2"}, {**REQUEST, "request_id": "PR-3"})
    drop(plant, "ps.xml", doc)
    plant.advance(8)
    by_quantity = {o["orderId"]: o for o in created(plant)}
    assert len(by_quantity) == 7
    # PR-2 waits behind a busy line (one line per factory, 30 s setup): not started, so it can change
    drop(plant, "change.xml", verb("Change", schedule({**REQUEST, "request_id": "PR-2", "quantity": 9}), "CHG-1"))
    drop(plant, "cancel.xml", verb("Cancel", schedule({**REQUEST, "request_id": "PR-3"}), "CAN-1"))
    drop(plant, "get.xml", verb("Get", schedule(first), "GET-1"))
    plant.advance(6)
    states = {e.payload["transaction"]: e.payload for e in plant.sent("b2mml/request_state")}
    assert states["CHG-1"]["accepted"] and states["CHG-1"]["quantity"] == 9
    assert states["CAN-1"]["accepted"] and states["CAN-1"]["state"] == "Cancelled"
    assert states["GET-1"]["accepted"] and states["GET-1"]["state"] in ("Ready", "Running")
    reassigned = [e.payload for e in plant.sent("factory/+/orders", type="sched.order_assigned")
                  if e.payload["orderId"] == states["CHG-1"]["order_id"]]
    assert reassigned[-1]["quantity"] == 9, "the factory was sent the new quantity"
    show = load(outbox(plant, "SHOW-GET-1")[0].read_bytes(), max_bytes=10**7)
    assert (show.verb, show.noun) == ("Show", "ProductionSchedule")
    assert show.root.find(".//{*}RequestState").get("OtherValue") == states["GET-1"]["state"]
    assert [f.name for f in outbox(plant, "RESPOND-")] == ["RESPOND-CAN-1-PR-3.xml", "RESPOND-CHG-1-PR-2.xml"]
    plant.advance(900)
    cancelled = states["CAN-1"]["order_id"]
    assert cancelled not in {e.payload["orderId"] for e in plant.sent("factory/+/completed")}
    assert not outbox(plant, f"PERF-{cancelled}"), "a cancelled order is not exported"
    checks_pass(plant)


def test_a_simulated_chaos_day_accounts_for_every_erp_request(plant40):
    """Chaos (factories failing, the MMS and PMS leaders killed) for two simulated hours with the simulated
    ERP sending a document every 20-60 s: at the end every imported request has an order (completed,
    running, pending or cancelled) and every completed ERP order is in outbox/ exactly once, valid.
    (`forge run examples/industry40 --simulate 24h --profile chaos` runs the same checks over a day.)"""
    plant = plant40(profile="chaos", params={"clients": {"min_interval": 20.0, "max_interval": 60.0},
                                             "erp": {"min_interval": 20.0, "max_interval": 60.0}})
    plant.advance(2 * 3600)
    erp = plant.component("erp").report()
    link = plant.component("erp_link").report()
    assert erp["requests_sent"] > 100 and erp["resend"] > 5 and erp["http"] > 20 and erp["change"] > 5, erp
    assert link["requests"] == erp["requests_sent"], "every request sent was imported once"
    assert plant.component("chaos").report()["kill"] >= 3
    details = checks_pass(plant)
    accounted = details["every imported ERP request accounted for"]
    assert "completed" in accounted and "without an order" not in accounted, accounted
    assert int(details["every completed ERP order exported exactly once"].split()[0]) > 50, details
