"""B2MML documents → plant messages (the tables in docs/plugins/b2mml.md, tested field by field).

| document | message type |
|---|---|
| ProductionSchedule/ProductionRequest (V0600), OperationsSchedule/OperationsRequest with OperationsType=Production (V0701) | ``b2mml.production_request`` (one per request) |
| ProcessSegment(Information), OperationsDefinition(Information) | ``b2mml.routing`` (one per segment / definition) |
| MaterialInformation/MaterialDefinition, /MaterialLot (and bare MaterialDefinition / MaterialLot) | ``b2mml.material_definition``, ``b2mml.material_lot`` |

Times: an ``xs:dateTime`` with an offset is converted to UTC (``...Z``); one without an offset is
taken as UTC (the convention documented for ERPs that send local time: configure them to send an
offset). Quantities keep B2MML's ``QuantityString`` and add ``quantity`` as a number when the
string is numeric (``null`` otherwise); the unit is ``UnitOfMeasure`` as sent (no conversion).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from forge_b2mml.validate import Document
from forge_b2mml.xml import B2mmlError, Problem, element_path, local

__all__ = ["Message", "duration_seconds", "to_dict", "to_messages", "utc"]

Message = tuple[str, dict[str, Any]]  # (message type, payload)
XML_SPACE = " \t\r\n"  # XML whitespace; str.strip() would also eat U+0085 and friends

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def duration_seconds(text: str | None) -> float | None:
    """``xs:duration`` → seconds (a month counted as 30 days, a year as 365: ISA-95 durations are
    operation times, where Y/M do not occur in practice)."""
    if not text:
        return None
    m = _DURATION.match(text.strip())
    if m is None:
        return None
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items() if k != "sign"}
    total = ((g["y"] * 365 + g["mo"] * 30 + g["d"]) * 86400 + g["h"] * 3600 + g["mi"] * 60 + g["s"])
    return -total if m.group("sign") else total


def utc(text: str | None) -> str | None:
    """An ``xs:dateTime`` as UTC ISO 8601 with ``Z`` (no offset: taken as UTC)."""
    if not text:
        return None
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return float(value) if value.is_finite() else None


class _Reader:
    """Namespace-bound element access (one namespace per release)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def all(self, el: etree._Element, name: str) -> list[etree._Element]:
        return el.findall(f"{{{self.ns}}}{name}")

    def one(self, el: etree._Element, name: str) -> etree._Element | None:
        return el.find(f"{{{self.ns}}}{name}")

    def text(self, el: etree._Element, name: str) -> str | None:
        child = el.find(f"{{{self.ns}}}{name}")
        if child is None or child.text is None:
            return None
        return child.text.strip(XML_SPACE)

    def texts(self, el: etree._Element, name: str) -> list[str]:
        return [c.text.strip(XML_SPACE) for c in self.all(el, name) if c.text]

    def description(self, el: etree._Element) -> str | None:
        parts = self.texts(el, "Description")
        return "\n".join(parts) if parts else None

    def quantity(self, el: etree._Element) -> dict[str, Any]:
        q = self.one(el, "Quantity")
        if q is None:
            return {"quantity": None, "quantity_string": None, "unit": None}
        string = self.text(q, "QuantityString")
        return {"quantity": _number(string), "quantity_string": string, "unit": self.text(q, "UnitOfMeasure")}

    def properties(self, el: etree._Element, name: str) -> list[dict[str, Any]]:
        found = []
        for prop in self.all(el, name):
            values = [self.text(v, "ValueString") for v in self.all(prop, "Value")]
            found.append({"id": self.text(prop, "ID"), "description": self.description(prop),
                          "value": next((v for v in values if v is not None), None), **self.quantity(prop)})
        return found


def _require(value: str | None, what: str, el: etree._Element, source: str) -> str:
    if value:
        return value
    raise B2mmlError(f"{what} is required by this plugin (B2MML V0600 makes it optional; the idempotency key is "
                     f"built from it)", [Problem(f"missing ID of {local(el.tag)} at {element_path(el)}",
                                                 element_path(el), el.sourceline)], source)


# -- schedules ---------------------------------------------------------------------------------------
def _material(r: _Reader, el: etree._Element, use: str | None) -> dict[str, Any]:
    return {"id": r.text(el, "ID"), "material_definition_id": r.text(el, "MaterialDefinitionID"),
            "material_class_id": r.text(el, "MaterialClassID"), "material_lot_id": r.text(el, "MaterialLotID"),
            "use": r.text(el, "MaterialUse") or use, **r.quantity(el)}


def _resources(r: _Reader, el: etree._Element, name: str, key: str) -> list[dict[str, Any]]:
    return [{"id": r.text(x, "ID"), "class_id": r.text(x, f"{key}ClassID"),
             "resource_id": r.text(x, "PersonID" if key == "Personnel" else f"{key}ID"),
             "use": r.text(x, f"{key}Use"), "description": r.description(x), **r.quantity(x)}
            for x in r.all(el, name)]


def _segment_requirement(r: _Reader, el: etree._Element) -> dict[str, Any]:
    materials = [_material(r, m, None) for m in r.all(el, "MaterialRequirement")]
    materials += [_material(r, m, "Produced") for m in r.all(el, "MaterialProducedRequirement")]
    materials += [_material(r, m, "Consumed") for m in r.all(el, "MaterialConsumedRequirement")]
    duration = r.text(el, "Duration")
    return {
        "id": r.text(el, "ID"),
        "process_segment_id": r.text(el, "ProcessSegmentID"),
        "operations_definition_id": r.text(el, "OperationsDefinitionID"),
        "operations_segment_id": r.text(el, "OperationsSegmentID"),
        "earliest_start": utc(r.text(el, "EarliestStartTime")),
        "latest_end": utc(r.text(el, "LatestEndTime")),
        "duration": duration,
        "duration_seconds": duration_seconds(duration),
        "personnel": _resources(r, el, "PersonnelRequirement", "Personnel"),
        "equipment": _resources(r, el, "EquipmentRequirement", "Equipment"),
        "materials": materials,
    }


def _walk_segments(r: _Reader, el: etree._Element) -> list[etree._Element]:
    """Segment requirements, nested ones (V0600 SegmentRequirement, V0701 SegmentRequirementChild) included."""
    found = []
    for seg in r.all(el, "SegmentRequirement") + r.all(el, "SegmentRequirementChild"):
        found.append(seg)
        found.extend(_walk_segments(r, seg))
    return found


def _requests(doc: Document) -> list[Message]:
    r = _Reader(doc.namespace)
    schedules = [doc.root] if doc.verb is None else r.all(r.one(doc.root, "DataArea"), doc.noun)
    messages: list[Message] = []
    v0600 = doc.version == "V0600"
    for schedule in schedules:
        schedule_id = r.text(schedule, "ID")
        schedule_type = r.text(schedule, "OperationsType")
        for request in r.all(schedule, "ProductionRequest" if v0600 else "OperationsRequest"):
            kind = r.text(request, "OperationsType") or schedule_type
            if not v0600 and kind not in (None, "Production"):
                continue  # maintenance, quality, inventory requests are not production orders
            segments = [_segment_requirement(r, s) for s in _walk_segments(r, request)]
            produced = [dict(m, segment_requirement_id=s["id"]) for s in segments for m in s["materials"]
                        if m["use"] == "Produced"]
            payload = {
                "version": doc.version,
                "schedule_id": schedule_id,
                "request_id": _require(r.text(request, "ID"), "ProductionRequest/ID", request, doc.source),
                "description": r.description(request),
                "start_time": utc(r.text(request, "StartTime")),
                "end_time": utc(r.text(request, "EndTime")),
                "priority": _number(r.text(request, "Priority")),
                "request_state": r.text(request, "RequestState"),
                "hierarchy_scope": r.text(r.one(request, "HierarchyScope"), "EquipmentID")
                if r.one(request, "HierarchyScope") is not None else None,
                "material_produced": produced,
                "segment_requirements": segments,
            }
            messages.append(("b2mml.production_request", payload))
    return messages


# -- routings ----------------------------------------------------------------------------------------
def _specs(r: _Reader, el: etree._Element, names: tuple[str, ...], key: str) -> list[dict[str, Any]]:
    return [item for name in names for item in _resources(r, el, name, key)]


def _operation(r: _Reader, seg: etree._Element) -> dict[str, Any]:
    duration = r.text(seg, "Duration")
    return {
        "id": r.text(seg, "ID"),
        "description": r.description(seg),
        "process_segment_id": r.text(seg, "ProcessSegmentID") if local(seg.tag) != "ProcessSegment" else r.text(
            seg, "ID"),
        "duration": duration,
        "duration_seconds": duration_seconds(duration),
        "personnel": _specs(r, seg, ("PersonnelSpecification", "PersonnelSegmentSpecification"), "Personnel"),
        "equipment": _specs(r, seg, ("EquipmentSpecification", "EquipmentSegmentSpecification"), "Equipment"),
        "materials": [_material(r, m, None) for name in ("MaterialSpecification", "MaterialSegmentSpecification")
                      for m in r.all(seg, name)],
        "dependencies": [r.text(d, "ProcessSegmentID") or r.text(d, "ID") for d in r.all(seg, "SegmentDependency")],
    }


def _routings(doc: Document) -> list[Message]:
    r = _Reader(doc.namespace)
    top = doc.root if doc.verb is None else r.one(doc.root, "DataArea")
    messages: list[Message] = []
    if doc.noun.startswith("ProcessSegment"):
        segments = [top] if doc.noun == "ProcessSegment" and doc.verb is None else (
            r.all(top, "ProcessSegment"))
        for seg in segments:
            op = _operation(r, seg)
            messages.append(("b2mml.routing", {
                "version": doc.version, "kind": "process_segment", "id": op["id"], "description": op["description"],
                "duration": op["duration"], "duration_seconds": op["duration_seconds"], "operations": [op]}))
        return messages
    definitions = [top] if doc.noun == "OperationsDefinition" and doc.verb is None else r.all(top,
                                                                                             "OperationsDefinition")
    for definition in definitions:
        ops = [_operation(r, s) for s in r.all(definition, "OperationsSegment")]
        total = [o["duration_seconds"] for o in ops]
        messages.append(("b2mml.routing", {
            "version": doc.version, "kind": "operations_definition", "id": r.text(definition, "ID"),
            "description": r.description(definition), "duration": None,
            "duration_seconds": sum(t for t in total if t is not None) if ops and None not in total else None,
            "operations": ops}))
    return messages


# -- material master data ----------------------------------------------------------------------------
def _materials(doc: Document) -> list[Message]:
    r = _Reader(doc.namespace)
    top = doc.root if doc.verb is None else r.one(doc.root, "DataArea")
    defs = [top] if doc.noun == "MaterialDefinition" and doc.verb is None else r.all(top, "MaterialDefinition")
    lots = [top] if doc.noun == "MaterialLot" and doc.verb is None else r.all(top, "MaterialLot")
    messages: list[Message] = [("b2mml.material_definition", {
        "version": doc.version, "id": r.text(d, "ID"), "description": r.description(d),
        "material_class_ids": r.texts(d, "MaterialClassID"),
        "properties": r.properties(d, "MaterialDefinitionProperty")}) for d in defs]
    messages += [("b2mml.material_lot", {
        "version": doc.version, "id": r.text(lot, "ID"), "description": r.description(lot),
        "material_definition_id": r.text(lot, "MaterialDefinitionID"), "status": r.text(lot, "Status"),
        "storage_location": r.text(lot, "StorageLocation"), **r.quantity(lot),
        "properties": r.properties(lot, "MaterialLotProperty")}) for lot in lots]
    return messages


def to_messages(doc: Document) -> list[Message]:
    """The plant messages of a valid document (empty for nouns that carry no plant data, e.g. an
    acknowledgement or a performance document coming back)."""
    if doc.noun in ("ProductionSchedule", "OperationsSchedule"):
        return _requests(doc)
    if doc.noun.startswith(("ProcessSegment", "OperationsDefinition")):
        return _routings(doc)
    if doc.noun.startswith("Material"):
        return _materials(doc)
    return []


def to_dict(element: etree._Element) -> Any:
    """The B2MML-JSON-like view of an element (``forge b2mml convert --to json``): local names as
    keys, a list where a name repeats, text as the value of a leaf, attributes as ``@name``."""
    children = [c for c in element if isinstance(c.tag, str)]
    attrs = {f"@{local(k)}": v for k, v in element.attrib.items()}
    if not children:
        text = (element.text or "").strip()
        return {**attrs, "#text": text} if attrs else text
    result: dict[str, Any] = dict(attrs)
    for child in children:
        name = local(child.tag)
        value = to_dict(child)
        if name in result:
            if not isinstance(result[name], list):
                result[name] = [result[name]]
            result[name].append(value)
        else:
            result[name] = value
    return result
