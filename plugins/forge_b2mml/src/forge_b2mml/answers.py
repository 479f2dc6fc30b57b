"""ISA-95 transactions beyond Process/Acknowledge: what Change, Cancel, Sync and Get documents ask
for, and the Show/Respond documents that answer them.

In: a ``Change``/``Cancel``/``Get`` (or ``Sync`` with ``actionCode`` Change/Replaced/Delete) of a
ProductionSchedule (V0600) or OperationsSchedule (V0701) becomes one ``b2mml.request_action``
message per request it names (``action`` change / cancel / get, the request's idempotency key,
for a change the new quantity and end time). ``Sync`` with ``Add`` (or no action code) is read
as Process. The plant (an adapter between this plugin and its order system) acts on them and
answers with ``b2mml.request_state``.

Out: each ``b2mml.request_state`` becomes ``Show<Noun>`` (answer to Get) or ``Respond<Noun>``
(answer to Change/Cancel): the schedule's ID, the request's ID, its ``RequestState`` and the
outcome in ``ResponseCriteria``; validated against the XSD like every export.
"""

from __future__ import annotations

from typing import Any, Literal

from lxml import etree

from forge_b2mml.validate import Document, validate_element
from forge_b2mml.xml import NAMESPACE_OF, Version

__all__ = ["ACTION_TYPE", "STATES", "STATE_TYPE", "action_of", "build_answer"]

ACTION_TYPE = "b2mml.request_action"
STATE_TYPE = "b2mml.request_state"
#: RequestState values the answers use (V0701's enumeration; V0600 has only Forecast/Released/Other,
#: so there they are written as ``Other`` with ``OtherValue``).
STATES = ("Waiting", "Ready", "Running", "Completed", "Cancelled", "Unknown")
_SYNC = {"Change": "change", "Replaced": "change", "Delete": "cancel", "Add": None}


def action_of(doc: Document) -> str | None:
    """``change`` / ``cancel`` / ``get`` for a schedule document that asks for one; None for Process
    (and Sync Add, or no verb): the requests are imported."""
    if doc.noun not in ("ProductionSchedule", "OperationsSchedule"):
        return None
    if doc.verb in ("Change", "Cancel", "Get"):
        return doc.verb.lower()
    if doc.verb == "Sync":
        codes = [e.get("actionCode") for e in doc.root.iter(f"{{{doc.namespace}}}ActionExpression")]
        for code in codes:
            if code in _SYNC:
                return _SYNC[code]
    return None


def _el(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        node.text = text
    return node


def build_answer(verb: Literal["Show", "Respond"], state: dict[str, Any], *, bodid: str, created: str,
                 sender: str) -> bytes:
    """``Show<Noun>`` / ``Respond<Noun>`` for one ``b2mml.request_state``; raises
    :class:`~forge_b2mml.export.ExportRejected` if it does not validate (never sent then)."""
    from forge_b2mml.export import ExportRejected

    version: Version = state["version"]
    ns = NAMESPACE_OF[version]
    noun = "ProductionSchedule" if version == "V0600" else "OperationsSchedule"
    root = etree.Element(f"{{{ns}}}{verb}{noun}", nsmap={None: ns})
    root.set("releaseID", "1.0")
    area = _el(root, ns, "ApplicationArea")
    _el(_el(area, ns, "Sender"), ns, "LogicalID", sender)
    _el(area, ns, "CreationDateTime", created)
    _el(area, ns, "BODID", bodid)
    data = _el(root, ns, "DataArea")
    head = _el(data, ns, verb)
    original = _el(head, ns, "OriginalApplicationArea")
    _el(original, ns, "CreationDateTime", created)
    _el(original, ns, "BODID", str(state["transaction"]))
    criteria = _el(head, ns, "ResponseCriteria")
    _el(criteria, ns, "ResponseExpression", "/" + noun).set(
        "actionCode", "Accepted" if state["accepted"] else "Rejected")
    status = _el(criteria, ns, "ChangeStatus")
    _el(status, ns, "Code", "Accepted" if state["accepted"] else "Rejected")
    _el(status, ns, "Description", str(state.get("detail") or state["state"])[:2000])
    schedule = _el(data, ns, noun)
    if state.get("schedule_id"):
        _el(schedule, ns, "ID", str(state["schedule_id"]))
    request = etree.SubElement(schedule, f"{{{ns}}}{'ProductionRequest' if version == 'V0600' else 'OperationsRequest'}")
    _el(request, ns, "ID", str(state["request_id"]))
    if state.get("detail"):
        _el(request, ns, "Description", str(state["detail"])[:2000])
    if state.get("end_time"):
        _el(request, ns, "EndTime", str(state["end_time"]))
    value = state["state"]
    if version == "V0600" or value == "Unknown":  # no such value in the enumeration: Other + OtherValue
        node = _el(request, ns, "RequestState", "Other")
        node.set("OtherValue", value)
    else:
        _el(request, ns, "RequestState", value)
    if version == "V0701":  # OperationsRequest requires its SegmentRequirements (echoed from the request)
        for seg in state.get("segments") or []:
            node = _el(request, ns, "SegmentRequirement")
            for field, name in (("id", "ID"), ("process_segment_id", "ProcessSegmentID"),
                                ("operations_definition_id", "OperationsDefinitionID"),
                                ("operations_segment_id", "OperationsSegmentID")):
                _el(node, ns, name, str(seg.get(field) or ""))
    problems = validate_element(root, version, noun)
    if problems:
        raise ExportRejected(f"{verb}{noun} {bodid} does not validate against the XSD", problems)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
