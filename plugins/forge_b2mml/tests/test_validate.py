"""Every negative case of shared/b2mml/VERIFICATION.txt is refused with a message naming the element."""

from __future__ import annotations

from pathlib import Path

import pytest

from forge_b2mml.validate import load, validate

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*.xml"))
MAX = 10 * 1024 * 1024


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()



PS = "production_schedule.xml"
PP = "production_performance.xml"
OS = "v0701_operations_schedule.xml"
OP = "v0701_operations_performance.xml"


def move_before(data: bytes, element: bytes, before: bytes) -> bytes:
    start = data.index(b"<" + element + b">")
    end = data.index(b"</" + element + b">") + len(element) + 3
    chunk, rest = data[start:end], data[:start] + data[end:]
    at = rest.index(b"<" + before + b">")
    return rest[:at] + chunk + rest[at:]


CASES = [
    ("bad date", PS, lambda d: d.replace(b"2024-05-02T06:00:00Z", b"2024-13-45T06:00:00Z", 1),
     "StartTime", "/ProductionSchedule/ProductionRequest/StartTime"),
    ("PublicationDate", PS, lambda d: d.replace(b"PublishedDate", b"PublicationDate"),
     "Unexpected child PublicationDate at /ProductionSchedule, expected one of (", "/ProductionSchedule/PublicationDate"),
    ("bare quantity", PS, lambda d: d.replace(
        b"<Quantity>\n          <QuantityString>10</QuantityString>\n          <UnitOfMeasure>EA</UnitOfMeasure>\n"
        b"        </Quantity>", b"<Quantity>10</Quantity><QuantityUnitOfMeasure>EA</QuantityUnitOfMeasure>"),
     "Quantity", "/ProductionSchedule/ProductionRequest/SegmentRequirement/MaterialProducedRequirement/Quantity"),
    ("priority high", PS, lambda d: d.replace(b"<Priority>1", b"<Priority>high"),
     "Priority at /ProductionSchedule/ProductionRequest/Priority: invalid value 'high' for xs:decimal",
     "/ProductionSchedule/ProductionRequest/Priority"),
    ("State", PP, lambda d: d.replace(b"<ResponseState>Completed</ResponseState>", b"<State>COMPLETED</State>"),
     "Unexpected child State at /ProductionPerformance/ProductionResponse", "/ProductionPerformance/ProductionResponse/State"),
    ("COMPLETED", PP, lambda d: d.replace(b"<ResponseState>Completed", b"<ResponseState>COMPLETED"),
     "ResponseState", "/ProductionPerformance/ProductionResponse/ResponseState"),
    ("order", PP, lambda d: move_before(d, b"ResponseState", b"SegmentResponse"),
     "Unexpected child SegmentResponse at /ProductionPerformance/ProductionResponse",
     "/ProductionPerformance/ProductionResponse/SegmentResponse"),
    ("SegmentData", PP, lambda d: d.replace(b"<MaterialProducedActual>", b"<SegmentData><MaterialProducedActual>")
     .replace(b"</MaterialProducedActual>", b"</MaterialProducedActual></SegmentData>"),
     "Unexpected child SegmentData at /ProductionPerformance/ProductionResponse/SegmentResponse, expected one of (",
     "/ProductionPerformance/ProductionResponse/SegmentResponse/SegmentData"),
    ("QuantityProduced", PP, lambda d: d.replace(b"<MaterialLotID>LOT-0001</MaterialLotID>",
                                                 b"<QuantityProduced>10</QuantityProduced><QuantityScrap>1</QuantityScrap>"),
     "Unexpected child QuantityProduced", ("/ProductionPerformance/ProductionResponse/SegmentResponse/"
     "MaterialProducedActual/QuantityProduced")),
    ("V0701 request without ID", OS, lambda d: d.replace(b"<ID>PR-0001</ID>", b""),
     "Unexpected child Description at /OperationsSchedule/OperationsRequest, expected ID",
     "/OperationsSchedule/OperationsRequest/Description"),
    ("V0701 bad date", OP, lambda d: d.replace(b"<ActualEndTime>2024-05-02T13:41:00Z",
                                               b"<ActualEndTime>2024-05-02 13:41"),
     "ActualEndTime", "/OperationsPerformance/OperationsResponse/SegmentResponse/ActualEndTime"),
    ("V0701 no OperationsDefinitionID", OS, lambda d: d.replace(
        b"<OperationsDefinitionID>OD-WIDGET-A</OperationsDefinitionID>", b""),
     "Unexpected child OperationsSegmentID at /OperationsSchedule/OperationsRequest/SegmentRequirement",
     "/OperationsSchedule/OperationsRequest/SegmentRequirement/OperationsSegmentID"),
    ("V0701 EndTime", OP, lambda d: d.replace(b"<OperationsType>Production</OperationsType>",
                                              b"<EndTime>2024-05-02T13:41:00Z</EndTime>"
                                              b"<OperationsType>Production</OperationsType>", 1),
     "Unexpected child EndTime at /OperationsPerformance, expected one of (", "/OperationsPerformance/EndTime"),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("backend", ["lxml", "xmlschema"])
def test_every_sample_is_valid(sample, backend):
    assert validate(sample.read_bytes(), max_bytes=MAX, backend=backend) == []


@pytest.mark.parametrize(("name", "sample", "edit", "message", "path"), CASES, ids=[c[0] for c in CASES])
def test_negative_case_is_refused_naming_the_element(name, sample, edit, message, path):
    data = edit(read(sample))
    assert data != read(sample), "the edit must change the document"
    problems = validate(data, max_bytes=MAX)
    assert problems, f"{name}: accepted"
    assert any(message in p.message and p.path == path for p in problems), [str(p) for p in problems]
    assert all(p.line for p in problems)


def test_every_error_at_once_with_the_expected_list():
    data = read(PS).replace(b"PublishedDate", b"PublicationDate").replace(b"<Priority>1", b"<Priority>high")
    problems = validate(data, max_bytes=MAX)
    assert [p.path for p in problems] == ["/ProductionSchedule/PublicationDate",
                                          "/ProductionSchedule/ProductionRequest/Priority"]
    assert "PublishedDate" in problems[0].message and problems[0].line == 7


def test_v0600_request_without_id_validates_but_the_mapping_refuses_it():
    from forge_b2mml.mapping import to_messages
    from forge_b2mml.xml import B2mmlError

    doc = load(read(PS).replace(b"<ID>PR-0001</ID>", b""), max_bytes=MAX)
    with pytest.raises(B2mmlError, match="ProductionRequest/ID is required"):
        to_messages(doc)


def test_v0701_endtime_upstream_spelling_is_valid():
    data = read(OP).replace(b"<OperationsType>Production</OperationsType>",
                            b"<Endtime>2024-05-02T13:41:00Z</Endtime><OperationsType>Production</OperationsType>", 1)
    assert validate(data, max_bytes=MAX) == []


def test_unsupported_root_is_named():
    data = b'<WorkSchedule xmlns="http://www.mesa.org/xml/B2MML"><ID>x</ID></WorkSchedule>'
    problems = validate(data, max_bytes=MAX)
    assert "unsupported root WorkSchedule" in problems[0].message


def test_schemas_are_compiled_once():
    from forge_b2mml.validate import schema_for

    assert schema_for("V0600", "ProductionSchedule") is schema_for("V0600", "ProductionSchedule")
