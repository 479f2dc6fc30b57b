"""ISA-95 Part 5 transactions with the ERP, and the durable ledger behind them.

Verbs (the XSDs define ``<Verb><Noun>`` elements for Process, Acknowledge, Sync, Get, Show,
Change, Cancel, Respond): an incoming ``Process<Noun>`` (or a bare noun, read as Process) is
answered with ``Acknowledge<Noun>``: ``ApplicationArea`` (our ``BODID`` = the acknowledgement
id), ``DataArea/Acknowledge/ResponseCriteria/ResponseExpression@actionCode`` = ``Accepted`` or
``Rejected``, ``ChangeStatus/Description`` the summary and one ``Reason`` per error, then the noun
echoed. An incoming ``Acknowledge<Noun>`` for one of our exports settles that export.

The :class:`Ledger` keeps, in the plant's SQL storage (so a restart forgets nothing):

* ``b2mml_keys`` — idempotency keys built from B2MML IDs (``request:V0600:PS-1:PR-1``); a
  document re-sent with the same IDs has no second effect;
* ``b2mml_pending`` — plant messages recorded in the same transaction as their keys and
  published afterwards (transactional outbox: a crash between the two publishes them at the
  next start, never loses them, never records a key without its messages);
* ``b2mml_exports`` — documents for the ERP: performance exports until the ERP acknowledges them,
  Show/Respond answers until delivered.

The tables are created by the Alembic revision ``b2mml_0001`` (branch ``b2mml``, registered by
the plugin through ``forge_register_migrations``): ``storage.migrate_on_start`` or ``forge db
upgrade`` applies it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from lxml import etree

from forge_b2mml.validate import Document, validate_element
from forge_b2mml.xml import NAMESPACE_OF, Version, local

__all__ = ["Acknowledgement", "Ledger", "LedgerMissing", "acknowledge", "read_acknowledgement", "wrap_process",
           "wrap_verb"]

# As created by migrations/0001_b2mml_ledger.py (the migration is what creates them; this is the
# query side's view of them).
_META = sa.MetaData()
KEYS = sa.Table("b2mml_keys", _META,
                sa.Column("key", sa.String(512), primary_key=True),
                sa.Column("ack_id", sa.String(128), nullable=False),
                sa.Column("at", sa.Float, nullable=False))
PENDING = sa.Table("b2mml_pending", _META,
                   sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
                   sa.Column("owner", sa.String(256), nullable=False),
                   sa.Column("type", sa.String(128), nullable=False),
                   sa.Column("key", sa.String(512), nullable=False),
                   sa.Column("payload", sa.Text, nullable=False))
EXPORTS = sa.Table("b2mml_exports", _META,
                   sa.Column("export_id", sa.String(256), primary_key=True),
                   sa.Column("order_id", sa.String(256), nullable=True, unique=True),
                   sa.Column("kind", sa.String(32), nullable=False),
                   sa.Column("needs_ack", sa.Boolean, nullable=False),
                   sa.Column("body", sa.LargeBinary, nullable=False),
                   sa.Column("attempts", sa.Integer, nullable=False, default=0),
                   sa.Column("created_at", sa.Float, nullable=False),
                   sa.Column("next_at", sa.Float, nullable=False),
                   sa.Column("acknowledged", sa.Boolean, nullable=False, default=False),
                   sa.Column("accepted", sa.Boolean, nullable=True),
                   sa.Column("reason", sa.Text, nullable=True))

# The export statements, built once (a statement built per call costs SQLAlchemy as much as running
# it: the exporter's poll and sends run them for every completion). Bind names differ from the
# columns', as an UPDATE's executemany requires.
_CLASH = sa.select(EXPORTS.c.export_id).where(sa.or_(EXPORTS.c.export_id == sa.bindparam("b_export"),
                                                     EXPORTS.c.order_id == sa.bindparam("b_order"))).limit(1)
_ADD_EXPORT = EXPORTS.insert()
_DUE = (sa.select(EXPORTS.c.export_id, EXPORTS.c.body, EXPORTS.c.attempts, EXPORTS.c.needs_ack)
        .where(~EXPORTS.c.acknowledged, EXPORTS.c.next_at <= sa.bindparam("b_now", type_=sa.Float))
        .order_by(EXPORTS.c.next_at))
_NEXT_DUE = sa.select(sa.func.min(EXPORTS.c.next_at)).where(~EXPORTS.c.acknowledged)
_ATTEMPTED = EXPORTS.update().where(EXPORTS.c.export_id == sa.bindparam("b_export")).values(
    attempts=EXPORTS.c.attempts + 1, next_at=sa.bindparam("b_next", type_=sa.Float))
_SETTLE = EXPORTS.update().where(EXPORTS.c.export_id == sa.bindparam("b_export"), ~EXPORTS.c.acknowledged).values(
    acknowledged=True, accepted=sa.bindparam("b_accepted", type_=sa.Boolean),
    reason=sa.bindparam("b_reason", type_=sa.Text))


@dataclass(frozen=True)
class PendingMessage:
    seq: int
    type: str
    key: str
    payload: dict[str, Any]


class LedgerMissing(RuntimeError):
    """The plant's database has no b2mml tables: the ``b2mml`` migrations were not applied."""


class Ledger:
    """Idempotency keys, pending plant messages and unacknowledged exports in one SQL database
    (tables of migration ``b2mml_0001``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        missing = sorted(set(_META.tables) - set(sa.inspect(engine).get_table_names()))
        if missing:
            raise LedgerMissing(f"forge_b2mml: table(s) {', '.join(missing)} missing in {engine.url!r}: apply the "
                                "'b2mml' migrations (`forge db upgrade PLANT`, or storage.migrate_on_start: true)")

    # -- imports ---------------------------------------------------------------------------
    def record(self, owner: str, ack_id: str, now: float, messages: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Record ``(key, type, payload)`` messages whose key is new, keys and messages in one
        transaction; returns how many were new (the rest are duplicates: no second effect)."""
        fresh = 0
        with self.engine.begin() as conn:
            seen: set[str] = set()
            keys = [k for k, _, _ in messages]
            for chunk in range(0, len(keys), 500):
                rows = conn.execute(sa.select(KEYS.c.key).where(KEYS.c.key.in_(keys[chunk:chunk + 500])))
                seen.update(r[0] for r in rows)
            new_keys, new_pending = [], []
            for key, type_, payload in messages:
                if key in seen:
                    continue
                seen.add(key)
                new_keys.append({"key": key, "ack_id": ack_id, "at": now})
                new_pending.append({"owner": owner, "type": type_, "key": key,
                                    "payload": json.dumps(payload, separators=(",", ":"))})
                fresh += 1
            if new_keys:
                conn.execute(KEYS.insert(), new_keys)
                conn.execute(PENDING.insert(), new_pending)
        return fresh

    def ack_id_of(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(KEYS.c.ack_id).where(KEYS.c.key == key)).scalar()

    def pending(self, owner: str, limit: int = 1000) -> list[PendingMessage]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(PENDING).where(PENDING.c.owner == owner).order_by(PENDING.c.seq)
                                .limit(limit)).all()
        return [PendingMessage(r.seq, r.type, r.key, json.loads(r.payload)) for r in rows]

    def published(self, seqs: list[int]) -> None:
        with self.engine.begin() as conn:
            conn.execute(PENDING.delete().where(PENDING.c.seq.in_(seqs)))

    # -- exports ---------------------------------------------------------------------------
    def add_export(self, export_id: str, order_id: str | None, body: bytes, now: float, *,
                   kind: str = "performance", needs_ack: bool = True) -> bool:
        """Store a document for the ERP; False when this order (or this export id) was stored before
        (no second export)."""
        with self.engine.begin() as conn:
            # order_id None matches no row (NULL = NULL is not true): the clash is on the export id alone
            if conn.execute(_CLASH, {"b_export": export_id, "b_order": order_id}).first() is not None:
                return False
            conn.execute(_ADD_EXPORT, {"export_id": export_id, "order_id": order_id, "kind": kind,
                                       "needs_ack": needs_ack, "body": body, "attempts": 0, "created_at": now,
                                       "next_at": now, "acknowledged": False})
        return True

    def due_exports(self, now: float) -> list[tuple[str, bytes, int, bool]]:
        """``(export_id, body, attempts, needs_ack)`` of the documents due for (re)sending."""
        with self.engine.connect() as conn:
            rows = conn.execute(_DUE, {"b_now": now}).all()
        return [(r[0], bytes(r[1]), int(r[2]), bool(r[3])) for r in rows]

    def next_due(self) -> float:
        """When the earliest unsettled export is due (``inf``: none waits)."""
        with self.engine.connect() as conn:
            at = conn.execute(_NEXT_DUE).scalar()
        return math.inf if at is None else float(at)

    def exported_orders(self) -> list[str]:
        """The order ids with a performance export (each at most once: a unique constraint)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(EXPORTS.c.order_id).where(EXPORTS.c.order_id.is_not(None))
                                     .order_by(EXPORTS.c.created_at)).scalars())

    def attempted(self, export_id: str, next_at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(_ATTEMPTED, {"b_export": export_id, "b_next": next_at})

    def settle(self, export_id: str, accepted: bool, reason: str | None) -> bool:
        """Mark an export acknowledged; False if unknown or already settled."""
        with self.engine.begin() as conn:
            done = conn.execute(_SETTLE, {"b_export": export_id, "b_accepted": accepted, "b_reason": reason})
        return done.rowcount == 1

    def export_state(self, export_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(EXPORTS).where(EXPORTS.c.export_id == export_id)).first()
        return None if row is None else {k: v for k, v in row._mapping.items() if k != "body"}

    def unacknowledged(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(EXPORTS)
                                    .where(~EXPORTS.c.acknowledged)).scalar() or 0)

    def imported_requests(self, before: float | None = None) -> list[str]:
        """Idempotency keys of every production request ever imported (``request:<version>:<schedule>:<id>``),
        or of those imported at or before ``before`` (the time given to :meth:`record`)."""
        query = sa.select(KEYS.c.key).where(KEYS.c.key.like("request:%"))
        if before is not None:
            query = query.where(KEYS.c.at <= before)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(KEYS.c.at, KEYS.c.key)).scalars())


# -- acknowledgement documents -------------------------------------------------------------------------
@dataclass(frozen=True)
class Acknowledgement:
    """What an ``Acknowledge<Noun>`` says."""

    ack_id: str | None
    noun: str
    ids: list[str]
    accepted: bool
    reasons: list[str]


def acknowledge(*, version: Version, noun: str, ack_id: str, created: str, accepted: bool, sender: str,
                reasons: list[str], echo: list[etree._Element] | None = None,
                original_area: etree._Element | None = None) -> bytes | None:
    """``Acknowledge<Noun>`` bytes, or None when no valid one can be built (a rejected V0701
    document whose noun cannot be echoed validly: the JSON acknowledgement still carries it)."""
    ns = NAMESPACE_OF[version]

    def el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        node = etree.SubElement(parent, f"{{{ns}}}{name}")
        if text is not None:
            node.text = text
        return node

    def build(nouns: list[etree._Element]) -> etree._Element:
        root = etree.Element(f"{{{ns}}}Acknowledge{noun}", nsmap={None: ns})
        root.set("releaseID", "1.0")
        area = el(root, "ApplicationArea")
        el(el(area, "Sender"), "LogicalID", sender)
        el(area, "CreationDateTime", created)
        el(area, "BODID", ack_id)
        data = el(root, "DataArea")
        ack = el(data, "Acknowledge")
        if original_area is not None:
            copy = etree.fromstring(etree.tostring(original_area))
            copy.tag = f"{{{ns}}}OriginalApplicationArea"
            ack.append(copy)
        criteria = el(ack, "ResponseCriteria")
        expression = el(criteria, "ResponseExpression", "/" + noun)
        expression.set("actionCode", "Accepted" if accepted else "Rejected")
        status = el(criteria, "ChangeStatus")
        el(status, "Code", "Accepted" if accepted else "Rejected")
        el(status, "Description", "; ".join(reasons)[:2000] if reasons else ("accepted" if accepted else "rejected"))
        for reason in reasons[:100]:
            el(status, "Reason", reason[:500])
        for n in nouns:
            data.append(etree.fromstring(etree.tostring(n)))
        return root

    candidates = [echo or []]
    if echo:  # a skeleton with only the IDs (valid in V0600, where every child is optional)
        skeleton = []
        for n in echo:
            s = etree.Element(n.tag)
            ident = n.find(f"{{{ns}}}ID")
            if ident is not None:
                etree.SubElement(s, ident.tag).text = ident.text
            skeleton.append(s)
        candidates.append(skeleton)
    for nouns in candidates:
        if not nouns:
            continue
        root = build(nouns)
        if not validate_element(root, version, noun):
            return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return None


def read_acknowledgement(doc: Document) -> Acknowledgement:
    """The verdict of an ``Acknowledge<Noun>`` document."""
    ns = doc.namespace
    area = doc.root.find(f"{{{ns}}}ApplicationArea")
    bodid = area.findtext(f"{{{ns}}}BODID") if area is not None else None
    data = doc.root.find(f"{{{ns}}}DataArea")
    codes = [e.get("actionCode") for e in doc.root.iter(f"{{{ns}}}ResponseExpression")]
    reasons = [(e.text or "").strip() for e in doc.root.iter(f"{{{ns}}}Reason")]
    ids = [] if data is None else [(n.findtext(f"{{{ns}}}ID") or "").strip() for n in data
                                   if isinstance(n.tag, str) and local(n.tag) == doc.noun]
    return Acknowledgement(bodid, doc.noun, [i for i in ids if i], "Rejected" not in codes, reasons)


def wrap_process(noun_xml: bytes, *, version: Version, bodid: str, created: str, sender: str) -> bytes:
    """``Process<Noun>`` around a noun document (the ERP answers with ``Acknowledge<Noun>``,
    naming the noun's ID); validated like every export."""
    return wrap_verb("Process", noun_xml, version=version, bodid=bodid, created=created, sender=sender)


def wrap_verb(verb: str, noun_xml: bytes, *, version: Version, bodid: str, created: str, sender: str,
              action_code: str | None = None) -> bytes:
    """``<Verb><Noun>`` around a noun document: Process (``acknowledgeCode="Always"``), Change, Cancel,
    Get or Sync (``action_code``: Add, Change, Delete, Replaced); validated against the XSD."""
    from forge_b2mml.export import ExportRejected

    ns = NAMESPACE_OF[version]
    noun_el = etree.fromstring(noun_xml)
    noun = local(noun_el.tag)
    root = etree.Element(f"{{{ns}}}{verb}{noun}", nsmap={None: ns})
    root.set("releaseID", "1.0")
    area = etree.SubElement(root, f"{{{ns}}}ApplicationArea")
    etree.SubElement(etree.SubElement(area, f"{{{ns}}}Sender"), f"{{{ns}}}LogicalID").text = sender
    etree.SubElement(area, f"{{{ns}}}CreationDateTime").text = created
    etree.SubElement(area, f"{{{ns}}}BODID").text = bodid
    data = etree.SubElement(root, f"{{{ns}}}DataArea")
    head = etree.SubElement(data, f"{{{ns}}}{verb}")
    if verb == "Process":
        head.set("acknowledgeCode", "Always")
    if action_code is not None:
        expression = etree.SubElement(etree.SubElement(head, f"{{{ns}}}ActionCriteria"), f"{{{ns}}}ActionExpression")
        expression.text = "/" + noun
        expression.set("actionCode", action_code)
    data.append(noun_el)
    problems = validate_element(root, version, noun)
    if problems:
        raise ExportRejected(f"{verb}{noun} {bodid} does not validate against the XSD", problems)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
