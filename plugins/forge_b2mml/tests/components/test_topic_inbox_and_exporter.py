"""b2mml.topic_inbox and b2mml.exporter in a small plant: the ERP talks over topics (the original
system's Kafka topics erp-production-schedule and work-order-completed), here the in-memory bus."""

from __future__ import annotations

from pathlib import Path

from forge_core.testing import backlog_on_subscribe

from forge_b2mml.samples import SAMPLE_COMPLETION
from forge_b2mml.transactions import acknowledge
from forge_b2mml.validate import load

DATA = Path(__file__).parents[1] / "data"
PLANT = {
    "erp_in": {"type": "b2mml.topic_inbox"},
    "exporter": {"type": "b2mml.exporter", "params": {"version": "V0701", "initial_backoff": 10.0,
                                                      "max_backoff": 40.0}},
}


def test_schedule_over_a_topic_is_imported_and_acknowledged(b2mml_plant):
    plant = b2mml_plant(PLANT)
    xml = (DATA / "v0701_operations_schedule.xml").read_text()
    plant.publish("erp-production-schedule", "b2mml.document", {"xml": xml, "name": "ps-1"})
    plant.advance(0.5)
    [req] = plant.sent("b2mml/production_request")
    assert req.payload["request_id"] == "PR-0001"
    [reply] = plant.sent("erp-acknowledgement", type="b2mml.document")
    ack = load(reply.payload["xml"], max_bytes=10**7)
    assert (ack.verb, ack.noun, ack.version) == ("Acknowledge", "OperationsSchedule", "V0701")
    plant.publish("erp-production-schedule", "b2mml.document", {"xml": xml})
    plant.advance(0.5)
    assert len(plant.sent("b2mml/production_request")) == 1, "same IDs: no second effect"


def test_invalid_document_on_the_topic_is_refused_and_dead_lettered(b2mml_plant):
    plant = b2mml_plant(PLANT)
    xml = (DATA / "v0701_operations_schedule.xml").read_text().replace("<ID>PR-0001</ID>", "")
    plant.publish("erp-production-schedule", "b2mml.document", {"xml": xml})
    plant.advance(0.5)
    assert plant.sent("b2mml/production_request") == []
    [letter] = plant.dead_letters
    assert "Unexpected child Description at /OperationsSchedule/OperationsRequest" in letter.errors[0]["message"]
    [ack] = plant.sent("b2mml/acknowledgement")
    assert ack.payload["accepted"] is False


def export_of(plant):
    return [load(m.payload["xml"], max_bytes=10**7) for m in plant.sent("work-order-completed")]


def erp_acknowledges(plant, doc, accepted=True):
    noun = doc.root.find("{*}DataArea/{*}OperationsPerformance")
    xml = acknowledge(version="V0701", noun="OperationsPerformance", ack_id="ERP-ACK-1",
                      created="2024-05-02T14:06:00Z", accepted=accepted, sender="SAP", reasons=[], echo=[noun])
    plant.publish("erp-production-schedule", "b2mml.document", {"xml": xml.decode()})


def test_completion_is_exported_valid_and_resent_until_acknowledged(b2mml_plant):
    plant = b2mml_plant(PLANT)
    plant.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION)
    plant.advance(0.5)
    [doc] = export_of(plant)
    assert (doc.verb, doc.noun) == ("Process", "OperationsPerformance")
    perf = doc.root.find("{*}DataArea/{*}OperationsPerformance")
    assert perf.findtext("{*}ID") == "PERF-PRESP-0001"
    assert perf.findtext("{*}OperationsResponse/{*}OperationsRequestID") == "PR-0001"
    plant.advance(11)                      # no acknowledgement within the first backoff: sent again
    assert len(export_of(plant)) == 2
    erp_acknowledges(plant, doc)
    plant.advance(0.5)
    exporter = plant.component("exporter")
    assert exporter.report()["acknowledged"] == 1 and exporter.report()["unacknowledged"] == 0
    plant.advance(100)
    assert len(export_of(plant)) == 2, "acknowledged: never sent again"
    plant.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION)
    plant.advance(0.5)
    assert len(export_of(plant)) == 2 and exporter.report()["duplicates"] == 1, "one export per order"


def test_an_export_the_erp_would_reject_is_never_sent(b2mml_plant):
    plant = b2mml_plant(PLANT)
    plant.publish("orders/completed", "b2mml.order_completed", dict(SAMPLE_COMPLETION, response_state="Done"))
    plant.advance(0.5)
    assert plant.sent("work-order-completed") == []
    [letter] = plant.dead_letters
    assert letter.reason == "handler_error" and "ExportRejected" in letter.detail
    assert "ResponseState" in letter.detail and "does not validate against the XSD" in letter.detail


def test_exports_to_a_directory(b2mml_plant, tmp_path):
    plant = b2mml_plant({"exporter": {"type": "b2mml.exporter", "params": {
        "destination": "directory", "directory": "outbox", "verb": "none", "require_ack": False}}})
    plant.publish("orders/completed", "b2mml.order_completed", SAMPLE_COMPLETION)
    plant.advance(0.5)
    [path] = (tmp_path / "plant" / "outbox").glob("*.xml")
    doc = load(path.read_bytes(), max_bytes=10**7)
    assert (doc.version, doc.verb, doc.noun) == ("V0600", None, "ProductionPerformance")
    assert plant.component("exporter").report()["unacknowledged"] == 0


def test_a_completion_delivered_while_start_still_subscribes_is_exported(b2mml_plant):
    """A broker delivers what waited for the exporter (a completion while it was down) as soon as its
    subscription exists, while start() still awaits the next: it is exported, not dead-lettered (next_due
    and rescan_at were made after the subscriptions, an AttributeError in on_completed)."""
    with backlog_on_subscribe("exporter", "on_completed", "b2mml.order_completed", SAMPLE_COMPLETION) as delivered:
        plant = b2mml_plant(PLANT)
    assert delivered == ["exporter"]
    plant.advance(0.5)
    assert [letter.reason for letter in plant.dead_letters] == []
    [doc] = export_of(plant)
    assert doc.root.find("{*}DataArea/{*}OperationsPerformance").findtext("{*}ID") == "PERF-PRESP-0001"
