"""``b2mml.topic_inbox``: B2MML documents as ``b2mml.document`` messages on a topic.

``b2mml.document`` = ``{"xml": "<...the document...>", "name": optional label}``: the XML
travels as a JSON string field, so any Forge transport (Kafka, MQTT, the in-memory bus) carries
it with its envelope, trace context and dead-letter handling. The original system's Kafka topic
was ``erp-production-schedule`` (the default). Accepted or rejected, an Acknowledge<Noun>
document goes back on ``reply_topic`` (when one can be built) and a ``b2mml.acknowledgement`` on
``topics.acknowledgement``; a refused document is also dead-lettered with every error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from forge_core import Component, Envelope, Publishes, Subscribes

from forge_b2mml.inbound import INBOX_PUBLISHES, Inbound
from forge_b2mml.settings import TopicInboxParams
from forge_b2mml.transactions import Ledger

DOCUMENT_TYPE = "b2mml.document"


class TopicInbox(Component):
    """Import B2MML documents carried as b2mml.document messages (the XML in a string field)."""

    Params: ClassVar[type[TopicInboxParams]] = TopicInboxParams
    params: TopicInboxParams
    publishes = (*INBOX_PUBLISHES, Publishes(DOCUMENT_TYPE, param="reply_topic"))
    subscribes = (Subscribes(DOCUMENT_TYPE, param="topic"),)

    async def start(self) -> None:
        self.inbound = Inbound(self.ctx, self.params, Ledger(self.ctx.storage))
        await self.inbound.flush()
        await self.ctx.subscribe(self.params.topic, self.on_document, types=[DOCUMENT_TYPE])

    async def on_document(self, envelope: Envelope) -> None:
        label = envelope.payload.get("name") or envelope.id
        receipt = self.inbound.receive(envelope.payload["xml"].encode("utf-8"), source=f"topic:{label}")
        if receipt.accepted:
            await self.inbound.flush()
        if receipt.ack_xml is not None and self.params.reply_topic:
            await self.ctx.publish(self.params.reply_topic, DOCUMENT_TYPE,
                                   {"xml": receipt.ack_xml.decode("utf-8"), "name": receipt.ack_id},
                                   key=receipt.ack_id)
        await self.inbound.publish_receipt(receipt)

    def report(self) -> dict[str, Any]:
        return dict(self.inbound.stats)
