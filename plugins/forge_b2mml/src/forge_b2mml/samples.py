"""Schedules built from plain dicts (``forge b2mml sample``, tests, the benchmark) — the ERP's
side of the exchange, in the element order the XSDs require."""

from __future__ import annotations

from typing import Any, Literal

from lxml import etree

from forge_b2mml.export import build_performance, quantity_string
from forge_b2mml.validate import validate_element
from forge_b2mml.xml import NAMESPACE_OF, B2mmlError, Version

__all__ = ["SAMPLE_COMPLETION", "SAMPLE_REQUEST", "build_schedule", "sample"]

SAMPLE_REQUEST: dict[str, Any] = {
    "request_id": "PR-0001", "description": "Make 10 widgets", "start_time": "2024-05-02T06:00:00Z",
    "end_time": "2024-05-02T14:00:00Z", "priority": 1, "request_state": "Released",
    "segment_id": "SR-0001", "process_segment_id": "ASSEMBLY", "operations_definition_id": "OD-WIDGET-A",
    "operations_segment_id": "OS-ASSEMBLY", "material_requirement_id": "MR-0001",
    "material_definition_id": "WIDGET-A", "quantity": 10, "unit": "EA",
}
SAMPLE_COMPLETION: dict[str, Any] = {
    "order_id": "PRESP-0001", "request_id": "PR-0001", "schedule_id": "PS-2024-0001",
    "actual_start": "2024-05-02T06:03:00Z", "actual_end": "2024-05-02T13:41:00Z", "response_state": "Completed",
    "segment_response_id": "SRESP-0001", "process_segment_id": "ASSEMBLY", "material_definition_id": "WIDGET-A",
    "material_lot_id": "LOT-0001", "quantity_produced": 10, "unit": "EA", "scrap_quantity": 1, "consumed": [],
}


def build_schedule(requests: list[dict[str, Any]], *, version: Version, schedule_id: str = "PS-2024-0001",
                   published: str = "2024-05-01T08:00:00Z", validate: bool = True) -> bytes:
    """A ProductionSchedule (V0600) or OperationsSchedule (V0701) with one request per dict
    (keys as :data:`SAMPLE_REQUEST`; missing optional keys are left out)."""
    ns = NAMESPACE_OF[version]

    def el(parent: etree._Element, name: str, text: Any = None) -> etree._Element:
        node = etree.SubElement(parent, f"{{{ns}}}{name}")
        if text is not None:
            node.text = str(text)
        return node

    def opt(parent: etree._Element, name: str, value: Any) -> None:
        if value is not None and value != "":
            el(parent, name, value)

    def quantity(parent: etree._Element, r: dict[str, Any]) -> None:
        q = el(parent, "Quantity")
        el(q, "QuantityString", quantity_string(r["quantity"]))
        opt(q, "UnitOfMeasure", r.get("unit"))

    noun = "ProductionSchedule" if version == "V0600" else "OperationsSchedule"
    root = etree.Element(f"{{{ns}}}{noun}", nsmap={None: ns})
    el(root, "ID", schedule_id)
    el(root, "PublishedDate", published)
    if version == "V0701":
        el(root, "OperationsType", "Production")
    for r in requests:
        req = el(root, "ProductionRequest" if version == "V0600" else "OperationsRequest")
        el(req, "ID", r["request_id"])
        opt(req, "Description", r.get("description"))
        opt(req, "StartTime", r.get("start_time"))
        opt(req, "EndTime", r.get("end_time"))
        if version == "V0701":
            el(req, "OperationsType", "Production")
        opt(req, "Priority", None if r.get("priority") is None else quantity_string(r["priority"]))
        if version == "V0701":
            opt(req, "RequestState", r.get("request_state"))
        seg = el(req, "SegmentRequirement")
        el(seg, "ID", r.get("segment_id") or f"{r['request_id']}-S1")
        if version == "V0600":
            opt(seg, "ProcessSegmentID", r.get("process_segment_id"))
            m = el(seg, "MaterialProducedRequirement")
            opt(m, "MaterialDefinitionID", r.get("material_definition_id"))
            quantity(m, r)
            opt(req, "RequestState", r.get("request_state"))
        else:
            el(seg, "ProcessSegmentID", r.get("process_segment_id") or "PRODUCTION")
            el(seg, "OperationsDefinitionID", r.get("operations_definition_id") or "DEFAULT")
            el(seg, "OperationsSegmentID", r.get("operations_segment_id") or "DEFAULT")
            m = el(seg, "MaterialRequirement")
            el(m, "ID", r.get("material_requirement_id") or f"{r['request_id']}-M1")
            opt(m, "MaterialDefinitionID", r.get("material_definition_id"))
            el(m, "MaterialUse", "Produced")
            quantity(m, r)
    if validate:
        problems = validate_element(root, version, noun)
        if problems:
            raise B2mmlError(f"sample {noun} does not validate", problems)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def sample(kind: Literal["schedule", "performance"], version: Version) -> bytes:
    """The sample documents of ``forge b2mml sample`` (the content of MESA-checked samples)."""
    if kind == "schedule":
        return build_schedule([SAMPLE_REQUEST], version=version)
    return build_performance([SAMPLE_COMPLETION], version=version, performance_id="PP-2024-0001",
                             published="2024-05-02T14:05:00Z")
