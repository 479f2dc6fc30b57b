"""``kafka.bridge``: forwards messages between an MQTT transport and a Kafka transport.

MQTT → Kafka by topic pattern (same topic on Kafka, ``/`` becoming ``.``), Kafka → MQTT by
message type to a topic per type. Each direction has an allow-list of types; anything else is
refused, counted and dead-lettered with reason ``refused``. The envelope crosses unchanged
(id, source, key, headers, trace context) except for the ``forgehops`` header, which lists the
transports it has crossed, exactly as the bus marks routed messages
(:func:`forge_core.transport.cross`) — so a message never comes back over the bridge that carried
it (no loops).

``to_kafka.routes`` carry a pattern to one named Kafka topic instead (``factory/+/heartbeat`` →
``factory.heartbeat``), with the record key taken from a level of the topic the message arrived on
(``key_from_level``) and, when the JSON body lacks them, fields written from levels
(``field_from_level``): many producers' topics become one keyed Kafka topic whose partitions keep
each producer's order. Towards MQTT a route's topic ``{topic}`` keeps the Kafka-side topic, for
messages addressed to one recipient's topic (``factory/<id>/orders``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from forge_core import Component, DeadLetter, Envelope, Flow, SettingsError
from forge_core import dead_letters as dl
from forge_core.transport import cross as crossed

from forge_kafka.settings import BridgeParams, KafkaRoute

#: in a ``to_mqtt.routes`` topic: the topic the message had on the Kafka side
SAME_TOPIC = "{topic}"


class Bridge(Component):
    """Forward MQTT topics to Kafka and Kafka message types to MQTT topics, allow-listed."""

    Params = BridgeParams
    params: BridgeParams

    @classmethod
    def uses_transports(cls, params: dict[str, Any], declared: Iterable[str]) -> set[str]:
        """Both sides, named or defaulted (the default ``mqtt``/``kafka`` come from :class:`BridgeParams`)."""
        try:
            model = BridgeParams.load(params)
        except SettingsError:  # forge validate reports it; connect what the names say meanwhile
            return super().uses_transports(params, declared)
        return {model.mqtt, model.kafka} & set(declared)

    @classmethod
    def flows(cls, params: BridgeParams) -> list[Flow]:
        """Each read pattern received on one side and sent on the other (the forwarded types; all
        when the allow-list is null), for ``forge asyncapi``."""
        found: list[Flow] = []
        up, down = params.to_kafka, params.to_mqtt
        if up is not None:
            types = tuple(up.types or ())
            for pattern in up.topics:
                found.append(Flow("receive", pattern, types, params.mqtt, origin="to_kafka.topics"))
                found.append(Flow("send", pattern, types, params.kafka, origin="to_kafka.topics"))
            for route in up.routes:
                key = f"level {route.key_from_level} of {route.topic}" if route.key_from_level is not None else None
                found.append(Flow("receive", route.topic, types, params.mqtt, origin="to_kafka.routes"))
                found.append(Flow("send", route.to, types, params.kafka, key=key, origin="to_kafka.routes"))
        if down is not None:
            for pattern in down.topics:
                found.append(Flow("receive", pattern, tuple(down.routes), params.kafka, origin="to_mqtt.topics"))
            for type_, topic in down.routes.items():  # {topic}: the Kafka-side topic, i.e. what was read
                for sent in ([topic] if SAME_TOPIC not in topic else
                             [topic.replace(SAME_TOPIC, pattern) for pattern in down.topics]):
                    found.append(Flow("send", sent, (type_,), params.mqtt, origin="to_mqtt.routes"))
        return found

    async def start(self) -> None:
        params = self.params
        self.mqtt = params.mqtt
        self.kafka = params.kafka
        self.counts: Counter[str] = Counter()
        to_kafka = params.to_kafka
        if to_kafka is not None:
            allowed = set(to_kafka.types) if to_kafka.types else None

            async def up(envelope: Envelope) -> None:
                await self._forward(envelope, self.mqtt, self.kafka, envelope.topic, allowed, "to_kafka")

            for pattern in to_kafka.topics:
                await self.ctx.subscribe(pattern, up, transport=self.mqtt)
            for route in to_kafka.routes:
                await self.ctx.subscribe(route.topic, self._router(route, allowed), transport=self.mqtt)
        to_mqtt = params.to_mqtt
        if to_mqtt is not None:
            routes: dict[str, str] = dict(to_mqtt.routes)

            async def down(envelope: Envelope) -> None:
                topic = routes.get(envelope.type)
                if topic is not None and SAME_TOPIC in topic:  # per-recipient topics: factory/<id>/orders
                    topic = topic.replace(SAME_TOPIC, envelope.topic)
                await self._forward(envelope, self.kafka, self.mqtt, topic, set(routes), "to_mqtt")

            for pattern in to_mqtt.topics:
                await self.ctx.subscribe(pattern, down, transport=self.kafka)

    def _router(self, route: KafkaRoute, allowed: set[str] | None) -> Any:
        """The handler of one ``to_kafka.routes`` entry: key and fields from topic levels, to ``route.to``."""

        async def routed(envelope: Envelope) -> None:
            levels = envelope.topic.split("/")  # the pattern's validator made every named level exist
            key = levels[route.key_from_level] if route.key_from_level is not None else envelope.key
            payload = envelope.payload
            missing = {name: levels[level] for name, level in route.field_from_level.items()
                       if isinstance(payload, dict) and name not in payload}
            if missing:  # a new body: the delivered one is shared with other subscribers
                payload = {**payload, **missing}
            if key != envelope.key or missing:
                envelope = replace(envelope, key=key, payload=payload)
            if await self._forward(envelope, self.mqtt, self.kafka, route.to, allowed, "to_kafka") and missing:
                self.counts["to_kafka_fields_filled"] += 1

        return routed

    async def _forward(self, envelope: Envelope, source: str, target: str, topic: str | None,
                       allowed: set[str] | None, direction: str) -> bool:
        """Send ``envelope`` on to ``target``; False when it looped back or was refused."""
        marked = crossed(envelope, source, target)
        if marked is None:
            self.counts[f"{direction}_looped"] += 1
            return False
        if topic is None or (allowed is not None and envelope.type not in allowed):
            self.counts[f"{direction}_refused"] += 1
            self.ctx.bus.stats.refused += 1
            self.ctx.bus.dead_letters.put(DeadLetter(
                dl.REFUSED, f"bridge {self.name!r}: type {envelope.type!r} is not allowed {direction} "
                f"({source} -> {target}); allowed: {', '.join(sorted(allowed or ())) or 'none'}",
                envelope.topic, source, self.ctx.clock.time(), [], self.name, envelope,
            ))
            return False
        await self.ctx.bus.send(topic, marked, transport=target)
        self.counts[direction] += 1
        self.ctx.bus.stats.forwarded += 1
        return True

    def health(self) -> dict[str, Any]:
        return dict(getattr(self, "counts", {}))
