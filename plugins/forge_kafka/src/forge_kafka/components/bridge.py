"""``kafka.bridge``: forwards messages between an MQTT transport and a Kafka transport.

MQTT → Kafka by topic pattern (same topic on Kafka, ``/`` becoming ``.``), Kafka → MQTT by
message type to a topic per type. Each direction has an allow-list of types; anything else is
refused, counted and dead-lettered with reason ``refused``. The envelope crosses unchanged
(id, source, key, headers, trace context) except for the ``forgehops`` header, which lists the
transports it has crossed, exactly as :meth:`forge_core.bus.MessageBus.add_route` marks routed
messages — so a message never comes back over the bridge that carried it (no loops).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from forge_core import Component, DeadLetter, Envelope
from forge_core import dead_letters as dl
from forge_core.transport import cross as crossed


class Bridge(Component):
    """Forward MQTT topics to Kafka and Kafka message types to MQTT topics, allow-listed."""

    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mqtt": {"type": "string", "default": "mqtt", "description": "name of the MQTT-side transport"},
            "kafka": {"type": "string", "default": "kafka", "description": "name of the Kafka-side transport"},
            "to_kafka": {
                "type": "object",
                "additionalProperties": False,
                "required": ["topics"],
                "properties": {
                    "topics": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "types": {"type": ["array", "null"], "items": {"type": "string"},
                              "description": "allow-list; null forwards every type"},
                },
            },
            "to_mqtt": {
                "type": "object",
                "additionalProperties": False,
                "required": ["routes"],
                "properties": {
                    "topics": {"type": "array", "items": {"type": "string"}, "default": ["#"],
                               "description": "Kafka-side patterns to read"},
                    "routes": {"type": "object", "additionalProperties": {"type": "string"},
                               "description": "message type -> MQTT topic; other types are refused"},
                },
            },
        },
    }

    async def start(self) -> None:
        params = self.params
        self.mqtt = params.get("mqtt", "mqtt")
        self.kafka = params.get("kafka", "kafka")
        self.counts: Counter[str] = Counter()
        to_kafka = params.get("to_kafka")
        if to_kafka:
            allowed = set(to_kafka["types"]) if to_kafka.get("types") else None

            async def up(envelope: Envelope) -> None:
                await self._forward(envelope, self.mqtt, self.kafka, envelope.topic, allowed, "to_kafka")

            for pattern in to_kafka["topics"]:
                await self.ctx.subscribe(pattern, up, transport=self.mqtt)
        to_mqtt = params.get("to_mqtt")
        if to_mqtt:
            routes: dict[str, str] = dict(to_mqtt["routes"])

            async def down(envelope: Envelope) -> None:
                await self._forward(envelope, self.kafka, self.mqtt, routes.get(envelope.type), set(routes),
                                    "to_mqtt")

            for pattern in to_mqtt.get("topics") or ["#"]:
                await self.ctx.subscribe(pattern, down, transport=self.kafka)

    async def _forward(self, envelope: Envelope, source: str, target: str, topic: str | None,
                       allowed: set[str] | None, direction: str) -> None:
        marked = crossed(envelope, source, target)
        if marked is None:
            self.counts[f"{direction}_looped"] += 1
            return
        if topic is None or (allowed is not None and envelope.type not in allowed):
            self.counts[f"{direction}_refused"] += 1
            self.ctx.bus.stats.refused += 1
            self.ctx.bus.dead_letters.put(DeadLetter(
                dl.REFUSED, f"bridge {self.name!r}: type {envelope.type!r} is not allowed {direction} "
                f"({source} -> {target}); allowed: {', '.join(sorted(allowed or ())) or 'none'}",
                envelope.topic, source, self.ctx.clock.time(), [], self.name, envelope,
            ))
            return
        await self.ctx.bus.send(topic, marked, transport=target)
        self.counts[direction] += 1
        self.ctx.bus.stats.forwarded += 1

    def health(self) -> dict[str, Any]:
        return dict(getattr(self, "counts", {}))
