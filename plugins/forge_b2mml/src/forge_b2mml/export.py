"""Completed orders (``b2mml.order_completed``) → ProductionPerformance (V0600) or
OperationsPerformance (V0701), validated against the XSD before anything leaves.

| ``b2mml.order_completed`` field | V0600 (ProductionPerformance/…) | V0701 (OperationsPerformance/…) |
|---|---|---|
| (argument) performance id | ``ID`` | ``ID`` |
| (argument) published | ``PublishedDate`` | ``PublishedDate`` |
| ``schedule_id`` | ``ProductionScheduleID`` | ``OperationsScheduleID`` (+ ``OperationsType=Production``) |
| ``order_id`` | ``ProductionResponse/ID`` | ``OperationsResponse/ID`` |
| ``request_id`` | ``ProductionResponse/ProductionRequestID`` | ``OperationsResponse/OperationsRequestID`` |
| ``actual_start`` / ``actual_end`` | ``ProductionResponse/StartTime``, ``EndTime`` and ``SegmentResponse/ActualStartTime``, ``ActualEndTime`` | the same under ``OperationsResponse`` |
| ``response_state`` | ``ProductionResponse/ResponseState``, ``SegmentResponse/SegmentState``, root ``PerformanceState`` | the same |
| ``segment_response_id`` (default ``<order_id>-1``) | ``SegmentResponse/ID`` | ``SegmentResponse/ID`` |
| ``process_segment_id`` | ``SegmentResponse/ProcessSegmentID`` | ``SegmentResponse/ProcessSegmentID`` |
| ``material_definition_id``, ``material_lot_id`` | ``MaterialProducedActual/MaterialDefinitionID``, ``MaterialLotID`` | ``MaterialActual`` (``MaterialUse=Produced``, ``ID=<order_id>-P``) |
| ``quantity_produced`` + ``unit`` | ``MaterialProducedActual/Quantity/{QuantityString, UnitOfMeasure}`` | ``MaterialActual/Quantity/…`` |
| ``scrap_quantity`` (convention) | ``MaterialProducedActualProperty[ID=ScrapQuantity]/Quantity`` | ``MaterialActualProperty[ID=ScrapQuantity]/Quantity`` |
| ``consumed[]`` (``material_definition_id``, ``lot_id``, ``quantity``, ``unit``) | ``MaterialConsumedActual/{MaterialDefinitionID, MaterialLotID, Quantity}`` | ``MaterialActual`` (``MaterialUse=Consumed``, ``ID=<order_id>-C<n>``) |

B2MML has no scrap element; the scrap is a property of the produced material actual with
``ID=ScrapQuantity`` and the same unit as the produced quantity (the convention of MESA's samples
shipped with this plugin). ``quantity_produced`` is the good quantity, scrap not included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lxml import etree

from forge_b2mml.mapping import utc
from forge_b2mml.validate import validate_element
from forge_b2mml.xml import NAMESPACE_OF, B2mmlError, Problem, Version

__all__ = ["SCRAP_PROPERTY", "ExportRejected", "build_performance", "quantity_string", "read_performance"]

SCRAP_PROPERTY = "ScrapQuantity"


class ExportRejected(B2mmlError):
    """An export failed XSD validation: the ERP would reject it, so it is never sent."""


def quantity_string(value: float | str) -> str:
    """``10.0`` → ``"10"``, ``0.25`` → ``"0.25"`` (QuantityString is text; no exponent, no trailing zeros)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return "0" if text in ("-0", "") else text


class _Builder:
    def __init__(self, version: Version) -> None:
        self.ns = NAMESPACE_OF[version]

    def el(self, parent: etree._Element | None, name: str, text: str | None = None) -> etree._Element:
        tag = f"{{{self.ns}}}{name}"
        node = etree.Element(tag, nsmap={None: self.ns}) if parent is None else etree.SubElement(parent, tag)
        if text is not None:
            node.text = text
        return node

    def opt(self, parent: etree._Element, name: str, text: str | None) -> None:
        if text is not None and text != "":
            self.el(parent, name, text)

    def quantity(self, parent: etree._Element, value: Any, unit: str | None) -> None:
        q = self.el(parent, "Quantity")
        self.el(q, "QuantityString", quantity_string(value))
        self.opt(q, "UnitOfMeasure", unit)


def _time(value: str | None, field: str, order: str) -> str | None:
    try:
        return utc(value)
    except ValueError:
        raise ExportRejected(f"order {order}: {field} {value!r} is not an ISO 8601 date-time",
                             [Problem(f"{field} is not a date-time: {value!r}", f"/{field}")]) from None


def _produced_v0600(b: _Builder, seg: etree._Element, c: dict[str, Any]) -> None:
    m = b.el(seg, "MaterialProducedActual")
    b.opt(m, "MaterialDefinitionID", c.get("material_definition_id"))
    b.opt(m, "MaterialLotID", c.get("material_lot_id"))
    b.quantity(m, c["quantity_produced"], c.get("unit"))
    if c.get("scrap_quantity") is not None:
        p = b.el(m, "MaterialProducedActualProperty")
        b.el(p, "ID", SCRAP_PROPERTY)
        b.quantity(p, c["scrap_quantity"], c.get("unit"))
    for item in c.get("consumed") or []:
        x = b.el(seg, "MaterialConsumedActual")
        b.opt(x, "MaterialDefinitionID", item.get("material_definition_id"))
        b.opt(x, "MaterialLotID", item.get("lot_id"))
        b.quantity(x, item["quantity"], item.get("unit"))


def _produced_v0701(b: _Builder, seg: etree._Element, c: dict[str, Any]) -> None:
    order = str(c["order_id"])
    m = b.el(seg, "MaterialActual")
    b.el(m, "ID", f"{order}-P")
    b.opt(m, "MaterialDefinitionID", c.get("material_definition_id"))
    b.opt(m, "MaterialLotID", c.get("material_lot_id"))
    b.el(m, "MaterialUse", "Produced")
    b.quantity(m, c["quantity_produced"], c.get("unit"))
    if c.get("scrap_quantity") is not None:
        p = b.el(m, "MaterialActualProperty")
        b.el(p, "ID", SCRAP_PROPERTY)
        b.quantity(p, c["scrap_quantity"], c.get("unit"))
    for n, item in enumerate(c.get("consumed") or [], 1):
        x = b.el(seg, "MaterialActual")
        b.el(x, "ID", f"{order}-C{n}")
        b.opt(x, "MaterialDefinitionID", item.get("material_definition_id"))
        b.opt(x, "MaterialLotID", item.get("lot_id"))
        b.el(x, "MaterialUse", "Consumed")
        b.quantity(x, item["quantity"], item.get("unit"))


def _response(b: _Builder, root: etree._Element, version: Version, c: dict[str, Any]) -> None:
    order = str(c["order_id"])
    start = _time(c.get("actual_start"), "actual_start", order)
    end = _time(c.get("actual_end"), "actual_end", order)
    state = c.get("response_state") or "Completed"
    if version == "V0600":
        r = b.el(root, "ProductionResponse")
        b.el(r, "ID", order)
        b.opt(r, "ProductionRequestID", c.get("request_id"))
        b.opt(r, "StartTime", start)
        b.opt(r, "EndTime", end)
    else:
        r = b.el(root, "OperationsResponse")
        b.el(r, "ID", order)
        b.opt(r, "StartTime", start)
        b.opt(r, "EndTime", end)
        b.el(r, "OperationsType", "Production")
        b.opt(r, "OperationsRequestID", c.get("request_id"))
        b.el(r, "ResponseState", state)  # V0701: before SegmentResponse
    seg = b.el(r, "SegmentResponse")
    b.el(seg, "ID", c.get("segment_response_id") or f"{order}-1")
    if version == "V0600":
        b.opt(seg, "ProcessSegmentID", c.get("process_segment_id"))
        b.opt(seg, "ActualStartTime", start)
        b.opt(seg, "ActualEndTime", end)
        _produced_v0600(b, seg, c)
        b.el(seg, "SegmentState", state)
        b.el(r, "ResponseState", state)  # V0600: after SegmentResponse
    else:
        b.opt(seg, "ActualStartTime", start)
        b.opt(seg, "ActualEndTime", end)
        b.opt(seg, "ProcessSegmentID", c.get("process_segment_id"))
        b.el(seg, "SegmentState", state)
        _produced_v0701(b, seg, c)


def build_performance(completions: list[dict[str, Any]], *, version: Version, performance_id: str,
                      published: str, schedule_id: str | None = None, performance_state: str | None = None,
                      validate: bool = True) -> bytes:
    """The performance document for ``completions`` (``b2mml.order_completed`` payloads), as
    UTF-8 bytes; :class:`ExportRejected` with every XSD error if it is not valid."""
    if not completions:
        raise ValueError("build_performance: at least one completion is needed")
    b = _Builder(version)
    noun = "ProductionPerformance" if version == "V0600" else "OperationsPerformance"
    root = b.el(None, noun)
    b.el(root, "ID", performance_id)
    b.el(root, "PublishedDate", _time(published, "published", performance_id))
    schedule = schedule_id or completions[0].get("schedule_id")
    states = {c.get("response_state") or "Completed" for c in completions}
    overall = performance_state or (states.pop() if len(states) == 1 else "Running")
    if version == "V0600":
        b.opt(root, "ProductionScheduleID", schedule)
        for c in completions:
            _response(b, root, version, c)
        b.el(root, "PerformanceState", overall)
    else:
        b.el(root, "OperationsType", "Production")
        b.opt(root, "OperationsScheduleID", schedule)
        b.el(root, "PerformanceState", overall)
        for c in completions:
            _response(b, root, version, c)
    if validate:
        problems = validate_element(root, version, noun)
        if problems:
            raise ExportRejected(f"export {performance_id} ({version} {noun}) does not validate against the XSD; "
                                 f"the ERP would reject it, so it is not sent", problems)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def read_performance(root: etree._Element, version: Version) -> list[dict[str, Any]]:
    """The inverse of :func:`build_performance`: ``b2mml.order_completed``-shaped dicts from a
    performance document (round trips, and ERPs that echo what they received)."""
    ns = NAMESPACE_OF[version]

    def q(el: etree._Element | None, name: str) -> etree._Element | None:
        return None if el is None else el.find(f"{{{ns}}}{name}")

    def t(el: etree._Element | None, name: str) -> str | None:
        found = q(el, name)
        return found.text.strip(" \t\r\n") if found is not None and found.text else None

    def amount(el: etree._Element | None) -> tuple[float | None, str | None]:
        quantity = q(el, "Quantity")
        text = t(quantity, "QuantityString")
        return (float(text) if text is not None else None), t(quantity, "UnitOfMeasure")

    v0600 = version == "V0600"
    completions = []
    for r in root.iterchildren(f"{{{ns}}}{'ProductionResponse' if v0600 else 'OperationsResponse'}"):
        seg = q(r, "SegmentResponse")
        if v0600:
            produced = q(seg, "MaterialProducedActual")
            consumed = [] if seg is None else list(seg.iterchildren(f"{{{ns}}}MaterialConsumedActual"))
            prop_name = "MaterialProducedActualProperty"
        else:
            actuals = [] if seg is None else list(seg.iterchildren(f"{{{ns}}}MaterialActual"))
            produced = next((a for a in actuals if t(a, "MaterialUse") == "Produced"), None)
            consumed = [a for a in actuals if t(a, "MaterialUse") == "Consumed"]
            prop_name = "MaterialActualProperty"
        quantity, unit = amount(produced)
        scrap = None
        if produced is not None:
            for prop in produced.iterchildren(f"{{{ns}}}{prop_name}"):
                if t(prop, "ID") == SCRAP_PROPERTY:
                    scrap = amount(prop)[0]
        completions.append({
            "order_id": t(r, "ID"),
            "request_id": t(r, "ProductionRequestID" if v0600 else "OperationsRequestID"),
            "schedule_id": t(root, "ProductionScheduleID" if v0600 else "OperationsScheduleID"),
            "actual_start": utc(t(seg, "ActualStartTime") or t(r, "StartTime")),
            "actual_end": utc(t(seg, "ActualEndTime") or t(r, "EndTime")),
            "response_state": t(r, "ResponseState"),
            "segment_response_id": t(seg, "ID"),
            "process_segment_id": t(seg, "ProcessSegmentID"),
            "material_definition_id": t(produced, "MaterialDefinitionID"),
            "material_lot_id": t(produced, "MaterialLotID"),
            "quantity_produced": quantity,
            "unit": unit,
            "scrap_quantity": scrap,
            "consumed": [{"material_definition_id": t(c, "MaterialDefinitionID"), "lot_id": t(c, "MaterialLotID"),
                          "quantity": amount(c)[0], "unit": amount(c)[1]} for c in consumed],
        })
    return completions
