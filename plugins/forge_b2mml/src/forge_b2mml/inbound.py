"""One path for every inbox (drop folder, HTTP, topic): bytes in → receipt out.

``Inbound.receive`` parses and validates (every error), maps, records the new messages with
their idempotency keys in the ledger (one transaction) and builds the acknowledgement; the
caller then calls ``flush`` to publish what is pending. Nothing of an invalid document is
applied: it is refused before anything is recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forge_core import DeadLetter, Publishes
from lxml import etree

from forge_b2mml.answers import ACTION_TYPE, action_of
from forge_b2mml.mapping import to_messages
from forge_b2mml.settings import B2mmlParams
from forge_b2mml.transactions import Acknowledgement, Ledger, acknowledge, read_acknowledgement
from forge_b2mml.validate import Document, load, nouns
from forge_b2mml.xml import B2mmlError, Problem, local, parse, split_verb, version_of

if TYPE_CHECKING:
    from forge_core import ComponentContext

__all__ = ["ACK_TYPE", "KINDS", "Inbound", "Receipt", "kind_of"]

ACK_TYPE = "b2mml.acknowledgement"

#: What every inbox publishes (``forge asyncapi``): each plant message on its ``topics.<kind>``, and the
#: acknowledgements.
INBOX_PUBLISHES: tuple[Publishes, ...] = (
    *(Publishes(f"b2mml.{kind}", param=f"topics.{kind}") for kind in (
        "production_request", "routing", "material_definition", "material_lot", "request_action")),
    Publishes(ACK_TYPE, param="topics.acknowledgement", key="the acknowledgement id"),
)

#: Document kinds an inbox accepts (``POST /b2mml/<kind>``) and the nouns of each.
KINDS: dict[str, tuple[str, ...]] = {
    "schedule": ("ProductionSchedule", "OperationsSchedule"),
    "routing": ("ProcessSegment", "ProcessSegmentInformation", "OperationsDefinition",
                "OperationsDefinitionInformation"),
    "material": ("MaterialInformation", "MaterialDefinition", "MaterialLot"),
    "acknowledgement": ("ProductionPerformance", "OperationsPerformance"),  # Acknowledge<Noun> of our exports
}


def kind_of(doc: Document) -> str | None:
    for kind, members in KINDS.items():
        if doc.noun in members and (kind == "acknowledgement") == (doc.verb == "Acknowledge"):
            return kind
    return None


def _key(type_: str, payload: dict[str, Any]) -> str:
    if type_ == "b2mml.production_request":  # same IDs: same request, whatever else changed
        return f"request:{payload['version']}:{payload.get('schedule_id') or ''}:{payload['request_id']}"
    digest = hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()[:16]
    return f"{type_}:{payload['version']}:{payload.get('id')}:{digest}"  # master data: a changed one applies


def _action(action: str, transaction: str, key: str, request: dict[str, Any]) -> dict[str, Any]:
    """The ``b2mml.request_action`` of one request named by a Change/Cancel/Get/Sync document."""
    produced = request.get("material_produced") or [{}]
    return {"action": action, "transaction": transaction, "key": key, "version": request["version"],
            "schedule_id": request.get("schedule_id"), "request_id": request["request_id"],
            "quantity": produced[0].get("quantity"), "unit": produced[0].get("unit"),
            "start_time": request.get("start_time"), "end_time": request.get("end_time"),
            "segments": [{k: seg.get(k) for k in ("id", "process_segment_id", "operations_definition_id",
                                                  "operations_segment_id")}
                         for seg in request.get("segment_requirements") or []]}


@dataclass
class Receipt:
    """What happened to one document."""

    ack_id: str
    accepted: bool
    source: str
    version: str | None = None
    noun: str | None = None
    kind: str | None = None
    errors: list[Problem] = field(default_factory=list)
    summary: str = ""
    messages: int = 0
    duplicates: int = 0
    ack_xml: bytes | None = None
    acknowledgement: Acknowledgement | None = None  # an ERP's verdict on one of our exports

    def payload(self) -> dict[str, Any]:
        """The ``b2mml.acknowledgement`` message of this receipt."""
        return {"ack_id": self.ack_id, "direction": "out", "accepted": self.accepted, "source": self.source,
                "version": self.version, "noun": self.noun, "ids": [], "summary": self.summary,
                "errors": [p.as_dict() for p in self.errors], "messages": self.messages,
                "duplicates": self.duplicates}


class Inbound:
    """Receive documents for one component; ``ledger`` is shared by its replicas through storage."""

    def __init__(self, ctx: ComponentContext, params: B2mmlParams, ledger: Ledger) -> None:
        self.ctx = ctx
        self.params = params
        self.ledger = ledger
        self.stats = {"received": 0, "accepted": 0, "rejected": 0, "messages": 0, "duplicates": 0,
                      "acknowledgements_in": 0}

    def _ack_id(self, data: bytes) -> str:
        return "ACK-" + hashlib.sha256(data).hexdigest()[:20]

    def receive(self, data: bytes, *, source: str, kind: str | None = None) -> Receipt:
        """Validate, map and record one document; never raises for a bad document."""
        self.stats["received"] += 1
        ack_id = self._ack_id(data)
        created = _now_iso(self.ctx.clock.time())
        try:
            doc = load(data, max_bytes=self.params.max_bytes, backend=self.params.backend, source=source)
            found = kind_of(doc)
            if kind is not None and found != kind:
                raise B2mmlError(f"expected a {kind} document ({', '.join(KINDS[kind])}), got "
                                 f"{doc.verb or ''}{doc.noun} ({found or 'not read by this plugin'})",
                                 [Problem(f"wrong document kind {doc.verb or ''}{doc.noun}", f"/{doc.root.tag}")],
                                 source)
            if found == "acknowledgement":
                verdict = read_acknowledgement(doc)
                self.stats["acknowledgements_in"] += 1
                return Receipt(verdict.ack_id or ack_id, True, source, doc.version, doc.noun, found,
                               acknowledgement=verdict, summary="acknowledgement received")
            action = action_of(doc)
            if action is None:
                messages = [(_key(t, p), t, p) for t, p in to_messages(doc)]
            else:  # Change / Cancel / Get / Sync: one request_action per request, once per transaction
                area = doc.root.find(f"{{{doc.namespace}}}ApplicationArea")
                bodid = (area.findtext(f"{{{doc.namespace}}}BODID") if area is not None else None) or ack_id
                messages = [(f"{action}:{bodid}:{_key(t, p)}", ACTION_TYPE, _action(action, bodid, _key(t, p), p))
                            for t, p in to_messages(doc) if t == "b2mml.production_request"]
        except B2mmlError as exc:
            self.stats["rejected"] += 1
            receipt = Receipt(ack_id, False, source, errors=exc.problems or [Problem(exc.summary)],
                              summary=exc.summary)
            receipt.ack_xml = self._rejection(data, ack_id, created, receipt)
            self._dead_letter(receipt, data)
            return receipt
        fresh = self.ledger.record(self.ctx.name, ack_id, self.ctx.clock.time(), messages)
        self.stats["accepted"] += 1
        self.stats["messages"] += fresh
        self.stats["duplicates"] += len(messages) - fresh
        summary = f"{fresh} new message(s)" + (f", {len(messages) - fresh} already received" if fresh < len(
            messages) else "")
        receipt = Receipt(ack_id, True, source, doc.version, doc.noun, kind_of(doc), summary=summary,
                          messages=fresh, duplicates=len(messages) - fresh)
        data_area = doc.root.find(f"{{{doc.namespace}}}DataArea")
        echo = [doc.root] if doc.verb is None else [n for n in (data_area if data_area is not None else [])
                                                     if isinstance(n.tag, str) and n.tag.endswith(doc.noun)]
        area = doc.root.find(f"{{{doc.namespace}}}ApplicationArea")
        receipt.ack_xml = acknowledge(version=doc.version, noun=doc.noun, ack_id=ack_id, created=created,
                                      accepted=True, sender=self.params.sender, reasons=[], echo=echo,
                                      original_area=area)
        return receipt

    def _rejection(self, data: bytes, ack_id: str, created: str, receipt: Receipt) -> bytes | None:
        """Acknowledge<Noun> with actionCode Rejected, when the document is XML of a known release
        and noun (its IDs echoed); None otherwise (the JSON acknowledgement still says why)."""
        try:
            root = parse(data, max_bytes=self.params.max_bytes)
            version = version_of(root)
        except B2mmlError:
            return None
        verb, noun = split_verb(local(root.tag), nouns(version))
        if noun not in nouns(version) or verb not in (None, "Process"):
            return None
        receipt.version, receipt.noun = version, noun
        reasons = [f"{p.path}: {p.message}" for p in receipt.errors]
        echo = [root] if verb is None else [n for n in root.iter(f"{{{etree.QName(root).namespace}}}{noun}")]
        return acknowledge(version=version, noun=noun, ack_id=ack_id, created=created, accepted=False,
                           sender=self.params.sender, reasons=reasons, echo=echo)

    def _dead_letter(self, receipt: Receipt, data: bytes) -> None:
        errors = [{"pointer": p.path, "message": (f"line {p.line}: " if p.line else "") + p.message}
                  for p in receipt.errors]
        letter = DeadLetter("invalid", f"B2MML document refused: {receipt.summary}", receipt.source, "b2mml",
                            self.ctx.clock.time(), errors, self.ctx.name, None,
                            data[:4096].decode("utf-8", "replace"))
        self.ctx.bus.dead_letters.put(letter)

    async def flush(self) -> int:
        """Publish the pending messages (after ``receive`` or at start, after a crash)."""
        sent = 0
        topics = self.params.topics
        while True:
            batch = self.ledger.pending(self.ctx.name)
            if not batch:
                return sent
            for item in batch:
                topic = getattr(topics, item.type.split(".", 1)[1])
                await self.ctx.publish(topic, item.type, item.payload, key=item.key)
                self.ledger.published([item.seq])
                sent += 1

    async def publish_receipt(self, receipt: Receipt) -> None:
        payload = receipt.payload()
        if receipt.acknowledgement is not None:
            verdict = receipt.acknowledgement
            payload.update(direction="in", accepted=verdict.accepted, ids=verdict.ids,
                           summary="; ".join(verdict.reasons) or payload["summary"])
        await self.ctx.publish(self.params.topics.acknowledgement, ACK_TYPE, payload, key=receipt.ack_id)


def _now_iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
