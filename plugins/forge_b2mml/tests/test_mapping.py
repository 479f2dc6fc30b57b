"""Mapping tables, field by field (docs/plugins/b2mml.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_b2mml.mapping import duration_seconds, to_dict, to_messages, utc
from forge_b2mml.validate import load

DATA = Path(__file__).parent / "data"
MAX = 10 * 1024 * 1024


def messages(name_or_bytes):
    data = name_or_bytes if isinstance(name_or_bytes, bytes) else (DATA / name_or_bytes).read_bytes()
    return to_messages(load(data, max_bytes=MAX))


@pytest.mark.parametrize(("sample", "version", "material_id", "od", "os_"), [
    ("production_schedule.xml", "V0600", None, None, None),
    ("v0701_operations_schedule.xml", "V0701", "MR-0001", "OD-WIDGET-A", "OS-ASSEMBLY"),
])
def test_production_request_field_by_field(sample, version, material_id, od, os_):
    [(type_, p)] = messages(sample)
    assert type_ == "b2mml.production_request"
    assert p["version"] == version
    assert p["schedule_id"] == "PS-2024-0001"                    # ProductionSchedule/ID
    assert p["request_id"] == "PR-0001"                          # ProductionRequest/ID
    assert p["description"] == "Make 10 widgets"                 # /Description
    assert p["start_time"] == "2024-05-02T06:00:00Z"             # /StartTime
    assert p["end_time"] == "2024-05-02T14:00:00Z"               # /EndTime
    assert p["priority"] == 1.0                                  # /Priority (xs:decimal)
    assert p["request_state"] == "Released"                      # /RequestState
    [seg] = p["segment_requirements"]
    assert seg["id"] == "SR-0001" and seg["process_segment_id"] == "ASSEMBLY"
    assert seg["operations_definition_id"] == od and seg["operations_segment_id"] == os_
    [m] = p["material_produced"]
    assert m == {"id": material_id, "material_definition_id": "WIDGET-A", "material_class_id": None,
                 "material_lot_id": None, "use": "Produced", "quantity": 10.0, "quantity_string": "10", "unit": "EA",
                 "segment_requirement_id": "SR-0001"}


def test_v0701_non_production_requests_are_skipped():
    data = (DATA / "v0701_operations_schedule.xml").read_bytes().replace(
        b"<OperationsType>Production</OperationsType>\n    <Priority>",
        b"<OperationsType>Maintenance</OperationsType>\n    <Priority>")
    assert messages(data) == []


def test_times_become_utc():
    assert utc("2024-05-02T08:00:00+02:00") == "2024-05-02T06:00:00Z"
    assert utc("2024-05-02T06:00:00") == "2024-05-02T06:00:00Z"  # no offset: taken as UTC
    assert utc("2024-05-02T06:00:00.250Z") == "2024-05-02T06:00:00.250Z"


@pytest.mark.parametrize(("text", "seconds"), [("PT2H", 7200.0), ("PT1H30M", 5400.0), ("P1DT0.5S", 86400.5),
                                               ("PT45S", 45.0), ("-PT1M", -60.0), ("garbage", None), (None, None)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


ROUTING_V0701 = b"""<OperationsDefinition xmlns="http://www.mesa.org/xml/B2MML">
  <ID>OD-WIDGET-A</ID>
  <Description>Widget A routing</Description>
  <OperationsSegment>
    <ID>OS-CUT</ID>
    <Duration>PT1H30M</Duration>
    <ProcessSegmentID>CUTTING</ProcessSegmentID>
    <PersonnelSpecification><ID>PS-1</ID><PersonnelClassID>Operator</PersonnelClassID>
      <Quantity><QuantityString>2</QuantityString><UnitOfMeasure>person</UnitOfMeasure></Quantity>
    </PersonnelSpecification>
    <EquipmentSpecification><ID>ES-1</ID><EquipmentClassID>Saw</EquipmentClassID></EquipmentSpecification>
  </OperationsSegment>
  <OperationsSegment>
    <ID>OS-ASSEMBLY</ID>
    <Duration>PT2H</Duration>
    <ProcessSegmentID>ASSEMBLY</ProcessSegmentID>
  </OperationsSegment>
</OperationsDefinition>"""

PROCESS_SEGMENT_V0600 = b"""<ProcessSegment xmlns="http://www.mesa.org/xml/B2MML-V0600">
  <ID>ASSEMBLY</ID>
  <Description>Assemble</Description>
  <Duration>PT2H</Duration>
  <PersonnelSegmentSpecification><PersonnelClassID>Fitter</PersonnelClassID>
    <Quantity><QuantityString>1</QuantityString></Quantity></PersonnelSegmentSpecification>
  <EquipmentSegmentSpecification><EquipmentID>PRESS-1</EquipmentID></EquipmentSegmentSpecification>
</ProcessSegment>"""


def test_operations_definition_to_routing():
    [(type_, p)] = messages(ROUTING_V0701)
    assert type_ == "b2mml.routing"
    assert (p["kind"], p["id"], p["description"]) == ("operations_definition", "OD-WIDGET-A", "Widget A routing")
    assert p["duration_seconds"] == 5400 + 7200
    cut, assembly = p["operations"]
    assert (cut["id"], cut["process_segment_id"], cut["duration"], cut["duration_seconds"]) == (
        "OS-CUT", "CUTTING", "PT1H30M", 5400.0)
    assert cut["personnel"][0]["class_id"] == "Operator" and cut["personnel"][0]["quantity"] == 2.0
    assert cut["personnel"][0]["unit"] == "person"
    assert cut["equipment"][0]["class_id"] == "Saw" and cut["equipment"][0]["id"] == "ES-1"
    assert assembly["duration_seconds"] == 7200.0 and assembly["personnel"] == []


def test_process_segment_to_routing():
    [(type_, p)] = messages(PROCESS_SEGMENT_V0600)
    assert (type_, p["kind"], p["id"], p["duration_seconds"]) == ("b2mml.routing", "process_segment", "ASSEMBLY", 7200.0)
    [op] = p["operations"]
    assert op["personnel"][0]["class_id"] == "Fitter" and op["equipment"][0]["resource_id"] == "PRESS-1"


MATERIAL_V0701 = b"""<MaterialInformation xmlns="http://www.mesa.org/xml/B2MML">
  <MaterialDefinition><ID>STEEL</ID><Description>Steel sheet</Description>
    <MaterialDefinitionProperty><ID>thickness</ID><Value><ValueString>2</ValueString></Value></MaterialDefinitionProperty>
    <MaterialClassID>METAL</MaterialClassID>
  </MaterialDefinition>
  <MaterialLot><ID>L-9</ID><MaterialDefinitionID>STEEL</MaterialDefinitionID><Status>released</Status>
    <Quantity><QuantityString>250.5</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>
  </MaterialLot>
</MaterialInformation>"""


def test_material_master_data():
    (t1, d), (t2, lot) = messages(MATERIAL_V0701)
    assert t1 == "b2mml.material_definition" and t2 == "b2mml.material_lot"
    assert (d["id"], d["description"], d["material_class_ids"]) == ("STEEL", "Steel sheet", ["METAL"])
    assert d["properties"][0]["id"] == "thickness" and d["properties"][0]["value"] == "2"
    assert (lot["id"], lot["material_definition_id"], lot["status"]) == ("L-9", "STEEL", "released")
    assert (lot["quantity"], lot["quantity_string"], lot["unit"]) == (250.5, "250.5", "KG")


def test_messages_match_their_json_schemas():
    import json

    import jsonschema

    schemas = Path(__file__).parents[1] / "src" / "forge_b2mml" / "schemas"
    docs = [DATA / "production_schedule.xml", DATA / "v0701_operations_schedule.xml"]
    found = [m for d in docs for m in messages(d.name)] + messages(ROUTING_V0701) + messages(
        PROCESS_SEGMENT_V0600) + messages(MATERIAL_V0701)
    for type_, payload in found:
        jsonschema.validate(payload, json.loads((schemas / f"{type_}.json").read_text()))


def test_to_dict_is_the_b2mml_json_view():
    view = to_dict(load((DATA / "production_schedule.xml").read_bytes(), max_bytes=MAX).root)
    assert view["ID"] == "PS-2024-0001"
    assert view["ProductionRequest"]["SegmentRequirement"]["MaterialProducedRequirement"]["Quantity"] == {
        "QuantityString": "10", "UnitOfMeasure": "EA"}
