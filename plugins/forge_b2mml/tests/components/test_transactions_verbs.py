"""Change / Cancel / Get / Sync in (b2mml.request_action per request, once per transaction) and the
plant's answers out (b2mml.request_state -> Show / Respond, validated), in a small plant."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from forge_b2mml import ExportRejected, build_answer, wrap_verb
from forge_b2mml.validate import load

DATA = Path(__file__).parents[1] / "data"
PLANT = {
    "erp_in": {"type": "b2mml.topic_inbox"},
    "exporter": {"type": "b2mml.exporter", "params": {"destination": "directory", "directory": "outbox"}},
}
V0600 = (DATA / "production_schedule.xml").read_bytes()
V0701 = (DATA / "v0701_operations_schedule.xml").read_bytes()


def noun_of(xml: bytes) -> bytes:
    return etree.tostring(etree.fromstring(xml))


def send(plant, verb: str, xml: bytes, bodid: str, version: str = "V0600", action_code: str | None = None) -> None:
    doc = wrap_verb(verb, noun_of(xml), version=version, bodid=bodid, created="2024-05-02T07:00:00Z",  # type: ignore[arg-type]
                    sender="SAP", action_code=action_code)
    plant.publish("erp-production-schedule", "b2mml.document", {"xml": doc.decode()})
    plant.advance(0.5)


def actions(plant) -> list[dict]:
    return [m.payload for m in plant.sent("b2mml/request_action", type="b2mml.request_action")]


def test_change_cancel_get_become_request_actions_once_per_transaction(b2mml_plant):
    plant = b2mml_plant(PLANT)
    changed = V0600.replace(b"<QuantityString>10<", b"<QuantityString>25<").replace(
        b"<EndTime>2024-05-02T14:00:00Z", b"<EndTime>2024-05-03T14:00:00Z")
    send(plant, "Change", changed, "CHG-1")
    send(plant, "Change", changed, "CHG-1")          # the same transaction again: no second effect
    send(plant, "Cancel", V0600, "CAN-1")
    send(plant, "Get", V0600, "GET-1")
    send(plant, "Sync", V0600, "SYN-1", action_code="Delete")
    send(plant, "Sync", V0600, "SYN-2", action_code="Add")  # read as Process: the request is imported
    got = actions(plant)
    assert [(a["action"], a["transaction"]) for a in got] == [
        ("change", "CHG-1"), ("cancel", "CAN-1"), ("get", "GET-1"), ("cancel", "SYN-1")]
    change = got[0]
    assert change["key"] == "request:V0600:PS-2024-0001:PR-0001", "the key of the imported request"
    assert (change["quantity"], change["unit"], change["end_time"]) == (25, "EA", "2024-05-03T14:00:00Z")
    [imported] = plant.sent("b2mml/production_request")
    assert imported.payload["request_id"] == "PR-0001"
    acks = [m.payload for m in plant.sent("b2mml/acknowledgement")]
    assert all(a["accepted"] for a in acks) and acks[1]["duplicates"] == 1


@pytest.mark.parametrize("version", ["V0600", "V0701"])
def test_request_state_is_answered_with_a_valid_show_or_respond(b2mml_plant, tmp_path, version):
    plant = b2mml_plant(PLANT)
    send(plant, "Get", V0600 if version == "V0600" else V0701, "GET-7", version=version)
    [action] = actions(plant)
    for act, state, accepted in (("get", "Running", True), ("cancel", "Running", False)):
        plant.publish("b2mml/request_state", "b2mml.request_state", {
            "action": act, "transaction": action["transaction"], "key": action["key"], "version": version,
            "schedule_id": action["schedule_id"], "request_id": action["request_id"], "accepted": accepted,
            "state": state, "detail": "order ord-1 started on factory-2", "order_id": "ord-1",
            "segments": action["segments"]})
        plant.advance(0.5)
    files = sorted((tmp_path / "plant" / "outbox").glob("*.xml"))
    assert [f.name for f in files] == [f"RESPOND-GET-7-{action['request_id']}.xml", f"SHOW-GET-7-{action['request_id']}.xml"]
    show = load(files[1].read_bytes(), max_bytes=10**7)
    noun = "ProductionSchedule" if version == "V0600" else "OperationsSchedule"
    assert (show.verb, show.noun) == ("Show", noun)
    state = show.root.find(".//{*}RequestState")
    assert (state.text, state.get("OtherValue")) == (("Other", "Running") if version == "V0600" else ("Running", None))
    respond = load(files[0].read_bytes(), max_bytes=10**7)
    assert respond.root.find(".//{*}ResponseExpression").get("actionCode") == "Rejected"
    assert plant.component("exporter").report()["answers"] == 2


def test_an_answer_the_xsd_rejects_is_never_built():
    with pytest.raises(ExportRejected, match="ShowOperationsSchedule"):  # V0701 requires the segments
        build_answer("Show", {"action": "get", "transaction": "T", "key": "k", "version": "V0701",
                              "schedule_id": "S", "request_id": "R", "accepted": True, "state": "Waiting",
                              "segments": []}, bodid="SHOW-T-R", created="2024-05-02T07:00:00Z", sender="forge")
