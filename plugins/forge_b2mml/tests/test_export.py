"""Export: round trips over every sample, field comparison, property tests, refusal of invalid exports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forge_b2mml.export import ExportRejected, build_performance, read_performance
from forge_b2mml.mapping import to_messages
from forge_b2mml.samples import SAMPLE_COMPLETION, build_schedule, sample
from forge_b2mml.validate import load, validate

DATA = Path(__file__).parent / "data"
MAX = 10 * 1024 * 1024


@pytest.mark.parametrize(("name", "version"), [("production_performance.xml", "V0600"),
                                               ("v0701_operations_performance.xml", "V0701")])
def test_performance_round_trip(name, version):
    doc = load((DATA / name).read_bytes(), max_bytes=MAX)
    [completion] = read_performance(doc.root, doc.version)
    assert completion["order_id"] == "PRESP-0001" and completion["request_id"] == "PR-0001"
    assert (completion["quantity_produced"], completion["unit"], completion["scrap_quantity"]) == (10.0, "EA", 1.0)
    assert completion["material_lot_id"] == "LOT-0001" and completion["response_state"] == "Completed"
    again = build_performance([completion], version=version, performance_id="PP-2024-0001",
                              published="2024-05-02T14:05:00Z")
    assert validate(again, max_bytes=MAX) == []
    back = load(again, max_bytes=MAX)
    assert read_performance(back.root, back.version) == [completion]


@pytest.mark.parametrize(("name", "version"), [("production_schedule.xml", "V0600"),
                                               ("v0701_operations_schedule.xml", "V0701")])
def test_schedule_round_trip(name, version):
    [(_, request)] = to_messages(load((DATA / name).read_bytes(), max_bytes=MAX))
    seg = request["segment_requirements"][0]
    produced = request["material_produced"][0]
    rebuilt = build_schedule([{
        "request_id": request["request_id"], "description": request["description"],
        "start_time": request["start_time"], "end_time": request["end_time"], "priority": request["priority"],
        "request_state": request["request_state"], "segment_id": seg["id"],
        "process_segment_id": seg["process_segment_id"], "operations_definition_id": seg["operations_definition_id"],
        "operations_segment_id": seg["operations_segment_id"], "material_requirement_id": produced["id"],
        "material_definition_id": produced["material_definition_id"], "quantity": produced["quantity"],
        "unit": produced["unit"]}], version=version, schedule_id=request["schedule_id"])
    assert to_messages(load(rebuilt, max_bytes=MAX)) == [("b2mml.production_request", request)]


def test_import_then_export_answers_the_request():
    [(_, request)] = to_messages(load((DATA / "v0701_operations_schedule.xml").read_bytes(), max_bytes=MAX))
    completion = {"order_id": "O-1", "request_id": request["request_id"], "schedule_id": request["schedule_id"],
                  "actual_start": "2024-05-02T06:03:00Z", "actual_end": "2024-05-02T13:41:00Z",
                  "material_definition_id": request["material_produced"][0]["material_definition_id"],
                  "quantity_produced": 9, "unit": request["material_produced"][0]["unit"], "scrap_quantity": 1,
                  "consumed": [{"material_definition_id": "STEEL", "lot_id": "L-9", "quantity": 2.5, "unit": "KG"}]}
    for version in ("V0600", "V0701"):
        doc = load(build_performance([completion], version=version, performance_id="P-1",
                                     published="2024-05-02T14:00:00Z"), max_bytes=MAX)
        [back] = read_performance(doc.root, doc.version)
        assert back["request_id"] == "PR-0001" and back["quantity_produced"] == 9.0 and back["scrap_quantity"] == 1.0
        assert back["consumed"] == [{"material_definition_id": "STEEL", "lot_id": "L-9", "quantity": 2.5,
                                     "unit": "KG"}]


@pytest.mark.parametrize("version", ["V0600", "V0701"])
@pytest.mark.parametrize("kind", ["schedule", "performance"])
def test_cli_samples_are_valid(kind, version):
    assert validate(sample(kind, version), max_bytes=MAX) == []


@pytest.mark.parametrize("version", ["V0600", "V0701"])
def test_an_export_the_erp_would_reject_is_refused_with_the_element(version):
    with pytest.raises(ExportRejected, match="does not validate against the XSD") as info:
        build_performance([dict(SAMPLE_COMPLETION, response_state="COMPLETED")], version=version,
                          performance_id="P-1", published="2024-05-02T14:00:00Z")
    paths = [p.path for p in info.value.problems]
    assert any(p.endswith("/ResponseState") for p in paths), paths


def test_a_bad_time_is_refused():
    with pytest.raises(ExportRejected, match="actual_end 'yesterday' is not an ISO 8601 date-time"):
        build_performance([dict(SAMPLE_COMPLETION, actual_end="yesterday")], version="V0600", performance_id="P",
                          published="2024-05-02T14:00:00Z")


# -- property tests: the schema-constrained fields the mapping reads ---------------------------------------
ident = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="<>&"), min_size=1,
                max_size=20)
text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="<>&"), max_size=40).map(
    str.strip)
stamp = st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1),
                     max_value=__import__("datetime").datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat() + "Z")
amount = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)
request = st.fixed_dictionaries({
    "request_id": ident, "description": st.one_of(st.none(), text.filter(bool)), "start_time": stamp,
    "end_time": stamp, "priority": st.one_of(st.none(), st.integers(-1000, 1000)),
    "request_state": st.sampled_from([None, "Forecast", "Released"]), "segment_id": ident,
    "process_segment_id": ident, "operations_definition_id": ident, "operations_segment_id": ident,
    "material_requirement_id": ident, "material_definition_id": ident, "quantity": amount,
    "unit": st.one_of(st.none(), ident)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=5, unique_by=lambda r: r["request_id"]),
       st.sampled_from(["V0600", "V0701"]),
       st.sampled_from(["Completed", "Aborted", "Running"]), amount, st.one_of(st.none(), amount))
def test_generated_schedules_map_and_export_valid_documents(requests, version, state, produced, scrap):
    schedule = build_schedule(requests, version=version)
    mapped = to_messages(load(schedule, max_bytes=MAX))
    assert [p["request_id"] for _, p in mapped] == [r["request_id"] for r in requests]
    for r, (_, p) in zip(requests, mapped, strict=True):
        assert p["material_produced"][0]["quantity"] == float(r["quantity"])
        assert p["material_produced"][0]["unit"] == r["unit"]
    completions = [{"order_id": p["request_id"] + "-O", "request_id": p["request_id"],
                    "schedule_id": p["schedule_id"], "actual_start": p["start_time"], "actual_end": p["end_time"],
                    "response_state": state, "material_definition_id": p["material_produced"][0][
                        "material_definition_id"], "quantity_produced": float(produced), "unit": "EA",
                    "scrap_quantity": None if scrap is None else float(scrap), "consumed": []} for _, p in mapped]
    export = build_performance(completions, version=version, performance_id="PP-1", published="2024-05-02T14:00:00Z")
    assert validate(export, max_bytes=MAX) == []  # never an export the XSD rejects
    doc = load(export, max_bytes=MAX)
    back = read_performance(doc.root, doc.version)
    assert [b["request_id"] for b in back] == [r["request_id"] for r in requests]
    assert all(b["quantity_produced"] == float(produced) for b in back)
