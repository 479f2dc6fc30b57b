"""b2mml.drop_folder with real files: processed/, rejected/, acknowledgements, idempotency, restart safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

from forge_b2mml.validate import load

DATA = Path(__file__).parents[1] / "data"
COMPONENTS = {"inbox": {"type": "b2mml.drop_folder", "params": {"path": "inbox", "poll_interval": 1.0}}}


def drop(root: Path, name: str, data: bytes) -> None:
    tmp = root / "inbox" / f".{name}.part"
    tmp.write_bytes(data)
    os.replace(tmp, root / "inbox" / name)  # how a well-behaved writer delivers


def requests(plant):
    return plant.sent("b2mml/production_request", type="b2mml.production_request")


def test_schedule_becomes_request_and_is_acknowledged(b2mml_plant, tmp_path):
    plant = b2mml_plant(COMPONENTS)
    root = tmp_path / "plant"
    drop(root, "ps.xml", (DATA / "production_schedule.xml").read_bytes())
    plant.advance(1.5)
    [msg] = requests(plant)
    assert msg.payload["request_id"] == "PR-0001" and msg.key == "request:V0600:PS-2024-0001:PR-0001"
    assert (root / "inbox" / "processed" / "ps.xml").exists() and not (root / "inbox" / "ps.xml").exists()
    ack = load((root / "inbox" / "acks" / "ps.ack.xml").read_bytes(), max_bytes=10**7)
    assert (ack.verb, ack.noun) == ("Acknowledge", "ProductionSchedule")
    [receipt] = plant.sent("b2mml/acknowledgement", type="b2mml.acknowledgement")
    assert receipt.payload["accepted"] is True and receipt.payload["messages"] == 1


def test_same_schedule_again_has_no_second_effect(b2mml_plant, tmp_path):
    plant = b2mml_plant(COMPONENTS)
    root = tmp_path / "plant"
    drop(root, "a.xml", (DATA / "v0701_operations_schedule.xml").read_bytes())
    plant.advance(1.5)
    drop(root, "b.xml", (DATA / "v0701_operations_schedule.xml").read_bytes())
    plant.advance(1.5)
    assert len(requests(plant)) == 1
    acks = [m.payload for m in plant.sent("b2mml/acknowledgement")]
    assert [(a["accepted"], a["messages"], a["duplicates"]) for a in acks] == [(True, 1, 0), (True, 0, 1)]
    assert (root / "inbox" / "processed" / "b.xml").exists()


def test_invalid_document_is_rejected_with_every_error_and_nothing_applied(b2mml_plant, tmp_path):
    plant = b2mml_plant(COMPONENTS)
    root = tmp_path / "plant"
    bad = (DATA / "production_schedule.xml").read_bytes().replace(b"PublishedDate", b"PublicationDate").replace(
        b"<Priority>1", b"<Priority>high")
    drop(root, "bad.xml", bad)
    plant.advance(1.5)
    assert requests(plant) == []
    assert (root / "inbox" / "rejected" / "bad.xml").exists()
    report = json.loads((root / "inbox" / "rejected" / "bad.xml.errors.json").read_text())
    assert [e["path"] for e in report["errors"]] == ["/ProductionSchedule/PublicationDate",
                                                     "/ProductionSchedule/ProductionRequest/Priority"]
    [letter] = plant.dead_letters
    assert letter.reason == "invalid" and "PublicationDate" in letter.errors[0]["message"]
    ack = load((root / "inbox" / "acks" / "bad.ack.xml").read_bytes(), max_bytes=10**7)
    codes = [e.get("actionCode") for e in ack.root.iter("{*}ResponseExpression")]
    assert codes == ["Rejected"]
    [receipt] = plant.sent("b2mml/acknowledgement")
    assert receipt.payload["accepted"] is False and len(receipt.payload["errors"]) == 2


def test_garbage_is_rejected_without_a_b2mml_ack(b2mml_plant, tmp_path):
    plant = b2mml_plant(COMPONENTS)
    root = tmp_path / "plant"
    drop(root, "junk.xml", b"<not closed")
    plant.advance(1.5)
    assert (root / "inbox" / "rejected" / "junk.xml").exists()
    assert not (root / "inbox" / "acks" / "junk.ack.xml").exists()
    assert "not well-formed" in plant.sent("b2mml/acknowledgement")[0].payload["summary"]


def test_a_file_half_processed_at_a_crash_is_handled_once(b2mml_plant, tmp_path):
    root = tmp_path / "plant"
    plant = b2mml_plant(COMPONENTS, root=root)
    drop(root, "ps.xml", (DATA / "production_schedule.xml").read_bytes())
    plant.advance(1.5)
    assert len(requests(plant)) == 1
    plant.stop()
    # The crash: the file was claimed and recorded, but never moved out of processing/.
    os.replace(root / "inbox" / "processed" / "ps.xml", root / "inbox" / "processing" / "ps.xml")
    plant2 = b2mml_plant(COMPONENTS, root=root)
    plant2.advance(1.5)
    assert requests(plant2) == [], "recorded keys survive the restart: no second request"
    assert (root / "inbox" / "processed" / "ps.xml").exists()
    assert list((root / "inbox" / "processing").iterdir()) == []
    assert plant2.component("inbox").report()["recovered"] == 1


def test_messages_recorded_but_unpublished_at_a_crash_are_published_at_restart(b2mml_plant, tmp_path):
    import sqlalchemy as sa

    from forge_b2mml.transactions import Ledger

    root = tmp_path / "plant"
    plant = b2mml_plant(COMPONENTS, root=root)
    plant.stop()
    engine = sa.create_engine(f"sqlite:///{root / 'plant.db'}")
    Ledger(engine).record("inbox", "ACK-x", 0.0, [("request:V0600:S:R", "b2mml.production_request", {
        "version": "V0600", "schedule_id": "S", "request_id": "R", "start_time": None, "end_time": None,
        "priority": None, "material_produced": [], "segment_requirements": []})])
    engine.dispose()
    plant2 = b2mml_plant(COMPONENTS, root=root)
    plant2.advance(0.5)
    assert [m.payload["request_id"] for m in requests(plant2)] == ["R"]


def test_only_visible_files_matching_the_pattern_are_picked_up(b2mml_plant, tmp_path):
    plant = b2mml_plant(COMPONENTS)
    root = tmp_path / "plant"
    schedule = (DATA / "production_schedule.xml").read_bytes()
    (root / "inbox" / ".hidden.xml").write_bytes(schedule)  # a writer's temporary name
    (root / "inbox" / "notes.txt").write_bytes(schedule)
    (root / "inbox" / "folder.xml").mkdir()
    drop(root, "b.xml", schedule)
    drop(root, "a.xml", (DATA / "v0701_operations_schedule.xml").read_bytes())
    plant.advance(1.5)
    assert sorted(p.name for p in (root / "inbox" / "processed").iterdir()) == ["a.xml", "b.xml"]
    receipts = [m.payload for m in plant.sent("b2mml/acknowledgement", type="b2mml.acknowledgement")]
    assert [r["accepted"] for r in receipts] == [True, True] and len(requests(plant)) == 2
    assert {p.name for p in (root / "inbox").iterdir()} >= {".hidden.xml", "notes.txt", "folder.xml"}
