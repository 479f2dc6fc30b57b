"""``forge.logger``: prints the messages that match its topics, one line each.

Useful in the embedded profile to watch a plant's traffic, and in examples.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson
from pydantic import Field

from forge_core.components import Component
from forge_core.flows import Subscribes
from forge_core.messages.envelope import Envelope, format_time
from forge_core.settings import Settings


class MessageLoggerParams(Settings):
    topics: list[str] = Field(["#"], description="MQTT-style patterns to print")
    max_payload: int = Field(200, ge=16, description="payload characters shown before cutting")


class MessageLogger(Component):
    """Print matching messages (time, topic, type, source, payload)."""

    Params = MessageLoggerParams
    params: MessageLoggerParams
    subscribes = (Subscribes((), param="topics", shared=False),)

    stream: TextIO | None = None  # tests point it elsewhere; default stdout at print time

    async def start(self) -> None:
        self.count = 0
        for pattern in self.params.topics:
            await self.ctx.subscribe(pattern, self.show, shared=False)

    def show(self, envelope: Envelope) -> None:
        self.count += 1
        limit = self.params.max_payload
        body = orjson.dumps(envelope.payload).decode()
        if len(body) > limit:
            body = body[: limit - 1] + "…"
        stream = self.stream or sys.stdout
        print(f"{format_time(envelope.time)} {envelope.topic} {envelope.type} from {envelope.source}: {body}",
              file=stream, flush=True)

    def health(self) -> dict[str, Any]:
        return {"printed": getattr(self, "count", 0)}
