"""``b2mml.exporter``: completed orders → performance documents, sent until the ERP acknowledges.

On each ``b2mml.order_completed`` it builds ProductionPerformance (V0600) or
OperationsPerformance (V0701), validates it against the XSD and stores it in the ledger (the
plant's SQL storage) before anything is sent. A document that does not validate is never sent:
the handler raises :class:`~forge_b2mml.export.ExportRejected`, so the bus dead-letters the
completion with every XSD error. An order already exported is not exported again (its order id
is the idempotency key, kept across restarts: a unique constraint in ``b2mml_exports``).

Destinations: ``topic`` publishes a ``b2mml.document`` on ``topic`` (the original system's Kafka
topic was ``work-order-completed``); ``directory`` writes ``<export id>.xml`` atomically into
``directory``; ``http`` POSTs the document (``application/xml``) to ``url``, the ERP's endpoint.

The ledger is the outbox: a stored export is (re)sent by ``send_due`` until a
``b2mml.acknowledgement`` (direction ``in``) names it, after the RetryPolicy backoff
(``initial_backoff`` doubling up to ``max_backoff``); a failed send (no answer, 5xx) is retried the
same way. When the next export is due is kept in memory: read from the ledger at start, after each
pass that sent something and every ``rescan`` s (exports another process stored in the same
database); a ``resend`` tick before that time asks the database nothing. Over HTTP the ERP may answer the POST with its ``Acknowledge<Noun>`` right away (2xx with
the document as body): that settles the export at once; a 4xx other than 408/429 is the ERP
refusing the document, settled as rejected (sending it again would not change its mind). With
``require_ack: false`` a successful send settles it.

``b2mml.request_state`` (the plant's answer to a Get, Change or Cancel) becomes ``Show<Noun>`` /
``Respond<Noun>``, validated and stored the same way, sent until delivered (no acknowledgement).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import httpx
from forge_core import Check, Component, Envelope, Flow, ForgeError, Publishes, Subscribes
from forge_core.tactics import RetryPolicy

from forge_b2mml.answers import STATE_TYPE, build_answer
from forge_b2mml.components._common import durable_files, resolve, write_atomic
from forge_b2mml.export import build_performance
from forge_b2mml.inbound import ACK_TYPE
from forge_b2mml.settings import ExporterParams
from forge_b2mml.transactions import Ledger, read_acknowledgement, wrap_process
from forge_b2mml.validate import load
from forge_b2mml.xml import B2mmlError

DOCUMENT_TYPE = "b2mml.document"
COMPLETED_TYPE = "b2mml.order_completed"


class DeliveryFailed(ForgeError):
    """The destination did not take the document (no answer, 5xx, 408, 429): sent again later."""


class Exporter(Component):
    """Export completed orders as B2MML performance documents; resend until acknowledged."""

    Params: ClassVar[type[ExporterParams]] = ExporterParams
    params: ExporterParams
    publishes = (Publishes(DOCUMENT_TYPE, param="topic", description="destination: topic only"),)
    subscribes = (Subscribes(COMPLETED_TYPE, param="completion_topic"),
                  Subscribes(ACK_TYPE, param="acknowledgement_topic"), Subscribes(STATE_TYPE, param="state_topic"))

    @classmethod
    def flows(cls, params: ExporterParams) -> list[Flow]:
        """As declared, without the export topic when exports go to a directory or over HTTP."""
        return [f for f in super().flows(params) if params.destination == "topic" or f.origin != "publishes[0]"]

    async def start(self) -> None:
        p = self.params
        self.ledger = Ledger(self.ctx.storage)
        # The retry tactic's schedule, used for the waits between sends (jitter 0: reproducible).
        self.backoff = RetryPolicy(initial=p.initial_backoff, max_backoff=p.max_backoff, jitter=0.0,
                                   clock=self.ctx.clock)
        self.stats = {"completions": 0, "exported": 0, "duplicates": 0, "sends": 0, "send_failures": 0,
                      "acknowledged": 0, "rejected_by_erp": 0, "answers": 0}
        self.http: httpx.AsyncClient | None = None
        if p.destination == "http":
            self.http = httpx.AsyncClient(timeout=p.http_timeout)
        #: When the earliest unsettled export is due: the ledger (the database) is the truth, read at
        #: start, after each pass that found something due and every ``rescan`` s; this exporter's own
        #: new exports lower it. Until then a ``resend`` tick runs no query (it did, every second).
        self.next_due = self.ledger.next_due()
        # the rescan rides on the send tick (no timer of its own: one more timer reorders the
        # virtual clock's same-instant events, and so a simulation's trace)
        self.rescan_at = self.ctx.clock.time() + (p.rescan if p.rescan is not None else math.inf)
        # set before subscribing: a completion queued while the exporter was down may arrive at once
        await self.ctx.subscribe(p.completion_topic, self.on_completed, types=[COMPLETED_TYPE])
        await self.ctx.subscribe(p.acknowledgement_topic, self.on_acknowledgement, types=[ACK_TYPE])
        await self.ctx.subscribe(p.state_topic, self.on_state, types=[STATE_TYPE])
        self.ctx.every(p.resend, self.send_due, name="send", initial_delay=0.0)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()

    def _iso(self, seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def export_id(self, order_id: str) -> str:
        return f"PERF-{order_id}"

    async def on_completed(self, envelope: Envelope) -> None:
        completion = envelope.payload
        self.stats["completions"] += 1
        order_id = str(completion["order_id"])
        export_id = self.export_id(order_id)
        now = self.ctx.clock.time()
        # Raises ExportRejected (every XSD error) before anything is stored or sent: dead-lettered.
        body = build_performance([completion], version=self.params.version, performance_id=export_id,
                                 published=self._iso(now))
        if self.params.verb == "Process":
            body = wrap_process(body, version=self.params.version, bodid=export_id, created=self._iso(now),
                                sender=self.params.sender)
        if not self.ledger.add_export(export_id, order_id, body, now):
            self.stats["duplicates"] += 1
            return
        self.stats["exported"] += 1
        self.next_due = min(self.next_due, now)
        sending = self.send_due()
        if sending is not None:
            await sending

    async def on_state(self, envelope: Envelope) -> None:
        """The plant's answer to a Get / Change / Cancel: Show<Noun> or Respond<Noun>, once per request
        and transaction (a repeated answer is not sent twice)."""
        state = envelope.payload
        verb: Literal["Show", "Respond"] = "Show" if state["action"] == "get" else "Respond"
        export_id = f"{verb.upper()}-{state['transaction']}-{state['request_id']}"[:256]
        now = self.ctx.clock.time()
        body = build_answer(verb, state, bodid=export_id, created=self._iso(now), sender=self.params.sender)
        if self.ledger.add_export(export_id, None, body, now, kind=verb.lower(), needs_ack=False):
            self.stats["answers"] += 1
            self.next_due = min(self.next_due, now)
            sending = self.send_due()
            if sending is not None:
                await sending

    def send_due(self) -> Awaitable[None] | None:
        """Send what is due: the sends, to await, or ``None`` when nothing is (nearly every tick). Sync, so
        ``ctx.every`` calls it on a timer callback, not in a task woken every ``resend`` s."""
        now = self.ctx.clock.time()
        if now >= self.rescan_at:  # exports another process stored in the same database
            self.rescan_at = now + (self.params.rescan or math.inf)
            self.next_due = min(self.next_due, self.ledger.next_due())
        if now < self.next_due:  # nothing is due yet (the ledger said so when it was last read)
            return None
        self.next_due = math.inf  # lowered meanwhile by a new export; the ledger's answer below
        return self._send_pass(now)

    async def _send_pass(self, now: float) -> None:
        try:
            await self._send_due(now)
            later = self.ledger.next_due()
        except BaseException:
            self.next_due = now  # the database failed: the next tick looks again
            raise
        self.next_due = min(self.next_due, later)

    async def _send_due(self, now: float) -> None:
        for export_id, body, attempts, needs_ack in self.ledger.due_exports(now):
            try:
                verdict = await self.send(export_id, body)
            except (OSError, ForgeError, httpx.HTTPError) as exc:  # the destination is away: after the backoff
                self.stats["send_failures"] += 1
                self.ctx.log.warning("export %s: send %d failed: %s", export_id, attempts + 1, exc)
                self.ledger.attempted(export_id, now + self.backoff.backoff(attempts + 1))
                continue
            self.stats["sends"] += 1
            if verdict is not None and needs_ack:  # the ERP answered the POST itself
                self._settle([export_id] if not verdict[2] else verdict[2], verdict[0], verdict[1])
                continue
            if not needs_ack or not self.params.require_ack:
                self.ledger.settle(export_id, True, "delivered (no acknowledgement required)")
                continue
            self.ledger.attempted(export_id, now + self.backoff.backoff(attempts + 1))

    async def send(self, export_id: str, body: bytes) -> tuple[bool, str, list[str]] | None:
        """Deliver one document; the ERP's verdict ``(accepted, reason, ids)`` when the destination gave
        one with the delivery (HTTP), else None."""
        if self.params.destination == "directory":
            write_atomic(resolve(self.ctx, self.params.directory) / f"{export_id}.xml", body,
                         durable=durable_files(self.ctx))
            return None
        if self.params.destination == "topic":
            await self.ctx.publish(self.params.topic, DOCUMENT_TYPE, {"xml": body.decode("utf-8"),
                                                                      "name": export_id}, key=export_id)
            return None
        return await self._post(export_id, body)

    async def _post(self, export_id: str, body: bytes) -> tuple[bool, str, list[str]] | None:
        assert self.http is not None and self.params.url is not None
        response = await self.http.post(self.params.url, content=body, headers={
            "Content-Type": "application/xml", "Accept": "application/xml", "X-B2MML-Export-Id": export_id})
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise DeliveryFailed(f"POST {self.params.url}: {status} {response.text[:200]}")
        if status >= 400:  # the ERP refuses this document: it would refuse it again
            return False, f"HTTP {status}: {response.text[:500]}", []
        if not response.content.strip():
            return None
        try:
            doc = load(response.content, max_bytes=10 * 1024 * 1024, source=f"http:{self.params.url}")
        except B2mmlError as exc:
            self.ctx.log.warning("export %s: the ERP's answer is not a valid B2MML document (%s); waiting for "
                                 "its acknowledgement", export_id, exc.summary)
            return None
        if doc.verb != "Acknowledge":
            return None
        ack = read_acknowledgement(doc)
        return ack.accepted, "; ".join(ack.reasons) or ("accepted" if ack.accepted else "rejected"), ack.ids

    def _settle(self, export_ids: list[str], accepted: bool, reason: str | None) -> None:
        for export_id in export_ids:
            if self.ledger.settle(export_id, accepted, reason):
                self.stats["acknowledged"] += 1
                if not accepted:
                    self.stats["rejected_by_erp"] += 1
                    self.ctx.log.error("the ERP rejected export %s: %s", export_id, reason)

    async def on_acknowledgement(self, envelope: Envelope) -> None:
        ack = envelope.payload
        if ack.get("direction") != "in":
            return
        self._settle(list(ack.get("ids") or []), bool(ack.get("accepted")), ack.get("summary"))

    def report(self) -> dict[str, Any]:
        return {**self.stats, "unacknowledged": self.ledger.unacknowledged()}

    def checks(self) -> list[Check]:
        return [Check("every export validated before it was sent", True,
                      f"{self.stats['exported']} exported, {self.stats['duplicates']} duplicate completions")]
