"""The ERP exchange during the distributed run: schedules by folder and HTTP become orders, each completed one
is exported once, malformed documents are refused, and each ERP process SIGKILLed mid-exchange loses and
duplicates nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from i40_erp import USER_REQUESTS
from i40_run import ERP_ORDER, RUN_SECONDS, Run, query


@pytest.mark.slow
@pytest.mark.servers
def test_the_erp_exchange_makes_orders_exports_each_once_and_rejects_bad_documents(run: Run) -> None:
    """Schedules in (folder and HTTP, the link killed twice, the PMS leader killed by chaos) become orders;
    each completed one comes back as one validated ProductionPerformance in outbox/; the malformed ones are
    refused with their reason, and nothing imported is lost."""
    from forge_b2mml import load

    summary, plant, user = run.summary, run.plant, run.user
    assert not user.errors, user.errors
    checks = {c["name"]: c for c in summary["checks"]}
    for name in ("every imported ERP request accounted for", "every completed ERP order exported exactly once",
                 "every export in the outbox validates, one per order", "no document left half-processed"):
        assert name in checks and checks[name]["passed"], (name, checks.get(name))
    # the link was killed mid-exchange and restarted from its state in PostgreSQL
    link = summary["extra"]["processes"]["erp_link"]
    assert user.erp_link_kills == 2 and link["exit_codes"].count(-9) == 2, (user.erp_link_kills, link)
    assert summary["reports"]["erp_link"].get("restored", 0) >= 1, summary["reports"]["erp_link"]
    # the test's schedules: dropped (twice: the second time changes nothing) and POSTed -> one order per request
    assert user.erp_posted is not None and user.erp_posted[0] == 202, user.erp_posted
    answer = user.erp_posted[1]  # one new request (a duplicate if an unanswered first try had reached it)
    assert answer["accepted"] is True and answer["messages"] + answer["duplicates"] == 1, user.erp_posted
    inbox = plant / "inbox"
    assert {"user-schedule.xml", "user-again.xml"} <= {p.name for p in (inbox / "processed").iterdir()}
    exports = dict(query(run, "SELECT order_id, count(*) FROM b2mml_exports WHERE order_id IS NOT NULL "
                              "GROUP BY order_id"))
    assert set(exports.values()) == {1}, exports
    for schedule_id, requests in USER_REQUESTS.items():
        for request_id, quantity in requests:
            rows = query(run, "SELECT id, status, quantity FROM orders WHERE idempotency_key = "
                              f"'request:V0600:{schedule_id}:{request_id}'")
            assert len(rows) == 1 and rows[0][2] == quantity, (request_id, rows)
            order_id, status, _ = rows[0]
            assert status == "completed", (request_id, rows)  # 2-3 units, a minute before the end
            document = plant / "outbox" / f"PERF-{order_id}.xml"
            doc = load(document.read_bytes(), max_bytes=1 << 20, source=str(document))  # valid against the XSD
            assert doc.noun == "ProductionPerformance" and request_id.encode() in document.read_bytes()
            assert exports.get(order_id) == 1, (order_id, exports)
    # every ERP order completed before the grace is exported once; the outbox holds exactly the exports
    completed = {o for o, in query(run, f"SELECT id FROM orders WHERE ({ERP_ORDER}) AND status = 'completed' "
                                        f"AND completed_at < to_timestamp({time.time() - 60})")}
    assert completed <= set(exports), sorted(completed - set(exports))
    assert {p.stem.removeprefix("PERF-") for p in (plant / "outbox").glob("PERF-*.xml")} == set(exports)
    # nothing lost: each request the ledger imported has its one order (or was refused for its quantity)
    # (imported 30 s, the link's export_grace, before the run's end: one imported as the run stops may still be
    # on its way to the link, as the plant's own check allows)
    imported = [k for k, in query(run, "SELECT key FROM b2mml_keys WHERE key LIKE 'request:%' "
                                       f"AND at < {run.started + RUN_SECONDS - 30}")]
    keyed = {k for k, in query(run, f"SELECT idempotency_key FROM orders WHERE {ERP_ORDER}")}
    assert len(imported) >= 5 and not [k for k in imported if k not in keyed and not k.startswith("b2mml:")], \
        (imported, keyed)
    # the malformed schedule: 400 with the element at fault over HTTP; rejected/ with its reason and a
    # Rejected acknowledgement from the folder; dead-lettered both times; no order of it
    assert user.erp_bad_post is not None and user.erp_bad_post[0] == 400, user.erp_bad_post
    assert "StartTime" in json.dumps(user.erp_bad_post[1]), user.erp_bad_post
    reason = json.loads((inbox / "rejected" / "user-bad.xml.errors.json").read_text())
    assert "StartTime" in json.dumps(reason["errors"]), reason
    assert b"Rejected" in (inbox / "acks" / "user-bad.ack.xml").read_bytes()
    assert not query(run, "SELECT key FROM b2mml_keys WHERE key LIKE '%PS-USER-BAD%'")
    assert summary["dead_letters"].get("invalid", 0) >= 2, summary["dead_letters"]
    # the simulated ERP reached the inbox over HTTP every time, and its documents were all taken
    erp = summary["reports"]["erp"]
    assert erp["requests_sent"] >= 3 and erp["http_refused"] == 0 and not erp.get("http_given_up"), erp


def orders_of(run: Run, schedule_id: str, request_id: str) -> list[Any]:
    key = f"request:V0600:{schedule_id}:{request_id}"
    return query(run, f"SELECT id, status FROM orders WHERE idempotency_key = '{key}'")


@pytest.mark.slow
@pytest.mark.servers
def test_each_erp_process_killed_mid_exchange_loses_and_duplicates_nothing(run: Run) -> None:
    """erp_http, erp_inbox and erp_exporter SIGKILLed from outside (erp_link: the test above): a POST
    while the inbox is down is refused (nothing answers) until the restarted process accepts it once;
    a file dropped as the folder's process dies, and one left claimed in processing/, are each
    imported once; the exporter's restart exports every due order once and leaves no partial file."""
    summary, plant, user = run.summary, run.plant, run.user
    assert not user.errors, user.errors
    procs = summary["extra"]["processes"]
    # the HTTP inbox: refused while down (curl: nothing answered, or 503 while it starts), then 202 once
    assert user.erp_http_kills == 1 and procs["erp_http"]["exit_codes"].count(-9) == 1, procs["erp_http"]
    tries = user.erp_http_tries
    assert tries and tries[-1][0] == 202, tries
    assert all(status in (0, 503) for status, _ in tries[:-1]), tries
    answer = tries[-1][1]
    assert answer["accepted"] is True and answer["messages"] + answer["duplicates"] == 1, answer
    assert len(orders_of(run, "PS-USER-3", "PR-U4")) == 1
    # the drop folder: killed twice; each file in processed/ once (a second import would add name.1),
    # one acknowledgement each, one order per request; the claimed file recovered at the restart
    assert user.erp_inbox_kills == 2 and procs["erp_inbox"]["exit_codes"].count(-9) == 2, procs["erp_inbox"]
    inbox = plant / "inbox"
    for name, schedule_id in (("user-4", "PS-USER-4"), ("user-5", "PS-USER-5")):
        placed = {sub: sorted(p.name for p in (inbox / sub).iterdir() if p.name.startswith(name))
                  for sub in ("processing", "processed", "rejected")}
        assert placed == {"processing": [], "processed": [f"{name}.xml"], "rejected": []}, placed
        assert not (inbox / f"{name}.xml").exists()
        assert len([p for p in (inbox / "acks").iterdir() if p.name.startswith(f"{name}.")]) == 1
        for request_id, _ in USER_REQUESTS[schedule_id]:
            assert len(orders_of(run, schedule_id, request_id)) == 1, (schedule_id, request_id)
    assert summary["reports"]["erp_inbox"].get("recovered", 0) >= 1, summary["reports"]["erp_inbox"]
    # the exporter: its restart carries on (exports made after the kill), each order's document once
    assert user.erp_exporter_kills == 1 and procs["erp_exporter"]["exit_codes"].count(-9) == 1, procs["erp_exporter"]
    after = query(run, "SELECT count(*) FROM b2mml_exports WHERE order_id IS NOT NULL AND created_at > "
                       f"{user.erp_exporter_killed_at + 1}")[0][0]
    assert after >= 1, "no export after the exporter's restart"
    duplicates = query(run, "SELECT order_id FROM b2mml_exports WHERE order_id IS NOT NULL GROUP BY order_id "
                            "HAVING count(*) > 1")
    assert not duplicates, duplicates
    outbox = plant / "outbox"
    assert not [p.name for p in outbox.iterdir() if p.name.startswith(".")], "a partial file left in outbox/"
    unsent = query(run, "SELECT export_id FROM b2mml_exports WHERE order_id IS NOT NULL AND NOT acknowledged "
                        f"AND created_at < {time.time() - 60}")
    assert not unsent, unsent
