"""``forge.logger``: prints the messages that match its topics, one line each.

Useful in the embedded profile to watch a plant's traffic, and in examples.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, TextIO

import orjson

from forge_core.components import Component
from forge_core.messages.envelope import Envelope, format_time


class MessageLogger(Component):
    """Print matching messages (time, topic, type, source, payload)."""

    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "topics": {"type": "array", "items": {"type": "string"}, "default": ["#"],
                       "description": "MQTT-style patterns to print"},
            "max_payload": {"type": "integer", "minimum": 16, "default": 200,
                            "description": "payload characters shown before cutting"},
        },
    }

    stream: TextIO | None = None  # tests point it elsewhere; default stdout at print time

    async def start(self) -> None:
        self.count = 0
        for pattern in self.params.get("topics", ["#"]):
            await self.ctx.subscribe(pattern, self.show, shared=False)

    def show(self, envelope: Envelope) -> None:
        self.count += 1
        limit = int(self.params.get("max_payload", 200))
        body = orjson.dumps(envelope.payload).decode()
        if len(body) > limit:
            body = body[: limit - 1] + "…"
        stream = self.stream or sys.stdout
        print(f"{format_time(envelope.time)} {envelope.topic} {envelope.type} from {envelope.source}: {body}",
              file=stream, flush=True)

    def health(self) -> dict[str, Any]:
        return {"printed": getattr(self, "count", 0)}
