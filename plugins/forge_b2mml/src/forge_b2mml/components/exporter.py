"""``b2mml.exporter``: completed orders → performance documents, sent until the ERP acknowledges.

On each ``b2mml.order_completed`` it builds ProductionPerformance (V0600) or
OperationsPerformance (V0701), validates it against the XSD and stores it in the ledger (the
plant's SQL storage) before anything is sent. A document that does not validate is never sent:
the handler raises :class:`~forge_b2mml.export.ExportRejected`, so the bus dead-letters the
completion with every XSD error. An order already exported is not exported again (its order id
is the idempotency key, kept across restarts).

Sending: ``destination: topic`` publishes a ``b2mml.document`` on ``topic`` (the original
system's Kafka topic was ``work-order-completed``); ``directory`` writes ``<export id>.xml``
atomically into ``directory``. Until a ``b2mml.acknowledgement`` (direction ``in``) names the
export, it is sent again after the RetryPolicy backoff (``initial_backoff`` doubling up to
``max_backoff``). With ``require_ack: false`` a successful send settles it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from forge_core import Check, Component, Envelope, ForgeError
from forge_core.tactics import RetryPolicy

from forge_b2mml.components._common import resolve, write_atomic
from forge_b2mml.export import build_performance
from forge_b2mml.inbound import ACK_TYPE
from forge_b2mml.settings import ExporterParams
from forge_b2mml.transactions import Ledger, wrap_process

DOCUMENT_TYPE = "b2mml.document"
COMPLETED_TYPE = "b2mml.order_completed"


class Exporter(Component):
    """Export completed orders as B2MML performance documents; resend until acknowledged."""

    Params: ClassVar[type[ExporterParams]] = ExporterParams
    params: ExporterParams

    async def start(self) -> None:
        p = self.params
        self.ledger = Ledger(self.ctx.storage)
        # The retry tactic's schedule, used for the waits between sends (jitter 0: reproducible).
        self.backoff = RetryPolicy(initial=p.initial_backoff, max_backoff=p.max_backoff, jitter=0.0,
                                   clock=self.ctx.clock)
        self.stats = {"completions": 0, "exported": 0, "duplicates": 0, "sends": 0, "send_failures": 0,
                      "acknowledged": 0, "rejected_by_erp": 0}
        await self.ctx.subscribe(p.completion_topic, self.on_completed, types=[COMPLETED_TYPE])
        await self.ctx.subscribe(p.acknowledgement_topic, self.on_acknowledgement, types=[ACK_TYPE])
        self.ctx.every(p.resend, self.send_due, name="send", initial_delay=0.0)

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
        await self.send_due()

    async def send_due(self) -> None:
        now = self.ctx.clock.time()
        for export_id, body, attempts in self.ledger.due_exports(now):
            try:
                await self.send(export_id, body)
            except (OSError, ForgeError) as exc:  # the destination is away: try again after the backoff
                self.stats["send_failures"] += 1
                self.ctx.log.warning("export %s: send %d failed: %s", export_id, attempts + 1, exc)
                self.ledger.attempted(export_id, now + self.backoff.backoff(attempts + 1))
                continue
            self.stats["sends"] += 1
            if not self.params.require_ack:
                self.ledger.settle(export_id, True, "delivered (no acknowledgement required)")
                continue
            self.ledger.attempted(export_id, now + self.backoff.backoff(attempts + 1))

    async def send(self, export_id: str, body: bytes) -> None:
        if self.params.destination == "directory":
            write_atomic(resolve(self.ctx, self.params.directory) / f"{export_id}.xml", body)
        else:
            await self.ctx.publish(self.params.topic, DOCUMENT_TYPE, {"xml": body.decode("utf-8"),
                                                                      "name": export_id}, key=export_id)

    async def on_acknowledgement(self, envelope: Envelope) -> None:
        ack = envelope.payload
        if ack.get("direction") != "in":
            return
        for export_id in ack.get("ids") or []:
            if self.ledger.settle(export_id, bool(ack.get("accepted")), ack.get("summary")):
                self.stats["acknowledged"] += 1
                if not ack.get("accepted"):
                    self.stats["rejected_by_erp"] += 1
                    self.ctx.log.error("the ERP rejected export %s: %s", export_id, ack.get("summary"))

    def report(self) -> dict[str, Any]:
        return {**self.stats, "unacknowledged": self.ledger.unacknowledged()}

    def checks(self) -> list[Check]:
        return [Check("every export validated before it was sent", True,
                      f"{self.stats['exported']} exported, {self.stats['duplicates']} duplicate completions")]
