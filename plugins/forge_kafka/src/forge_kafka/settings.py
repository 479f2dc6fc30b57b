"""Settings of forge_kafka, declared once as :class:`forge_core.Settings` models.

:class:`KafkaSettings` is ``transports.<name>.settings`` of a ``type: kafka`` transport;
:class:`BridgeParams` is ``params`` of a ``kafka.bridge`` component. From each model Forge takes the
JSON Schema the manifest is checked against, the defaults, typed attribute access, the docs table
(docs/transports/kafka.md, bridge.md) and one error class, :class:`forge_core.SettingsError`.

The librdkafka passthrough maps (``config``, ``producer``, ``consumer``) stay dicts: librdkafka has
hundreds of properties, so the installed librdkafka judges them, at validation, by building a client
that connects to nothing (``librdkafka_config``).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from forge_core import Settings
from pydantic import Field, field_validator, model_validator

from forge_kafka.librdkafka_config import refusal

__all__ = ["BridgeParams", "KafkaRoute", "KafkaSettings", "ToKafka", "ToMqtt", "TopicSpec"]


class TopicSpec(Settings):
    """A topic created on connect (``topics.<name>``)."""

    partitions: int = Field(1, ge=1, description="partitions of a topic created by the transport")
    replication: int = Field(1, ge=1, description="replication factor of a topic created by the transport")
    config: dict[str, str] = Field({}, description="topic configs, e.g. retention.ms")


class KafkaSettings(Settings):
    """``transports.<name>.settings`` of ``type: kafka``."""

    bootstrap: str = Field(min_length=1, description="bootstrap.servers, host:port[,host:port]")
    client_id: str | None = Field(None, description="client.id; default forge-<plant>-<transport>")
    group_template: str = Field("{plant}.{group}:{pattern}",
                                description="consumer group id; {plant}, {group} (group= or the owner), {pattern}")
    instance_id: str | None = Field(None, description="static membership: group.instance.id prefix, stable per "
                                                      "replica")
    session_timeout_ms: int = Field(10000, ge=500, description="consumer session.timeout.ms")
    heartbeat_interval_ms: int = Field(3000, ge=100, description="consumer heartbeat.interval.ms (at most a third "
                                                                 "of the session timeout)")
    max_poll_interval_ms: int = Field(300000, ge=1000, description="consumer max.poll.interval.ms")
    metadata_refresh_ms: int = Field(5000, ge=100, description="how soon a wildcard subscription sees a new topic")
    auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="where a new consumer group starts")
    max_redeliveries: int = Field(3, ge=0, description="deliveries again after a handler raised, before the "
                                                       "dead-letter topic")
    retry_backoff: float = Field(0.1, ge=0, description="seconds before the first redelivery; doubles each time")
    retry_backoff_max: float = Field(5.0, gt=0, description="longest pause before a partition is fetched again "
                                                           "after a handler raised Redeliver (rewound, never "
                                                           "dead-lettered); the pause doubles from retry_backoff "
                                                           "with each rewind in a row")
    dead_letter: bool = Field(True, description="publish undeliverable records to <topic><dead_letter_suffix>")
    dead_letter_suffix: str = Field(".dlq", min_length=1, description="suffix of dead-letter topics")
    content_mode: Literal["structured", "binary"] = Field(
        "structured", description="CloudEvents content mode of published records: structured (one JSON "
                                  "document: the attributes in the value, no header; what Forge processes "
                                  "exchange) or binary (ce_* headers, plain JSON value: for plain consumers that "
                                  "want the bare payload); received records are read in either, with or without "
                                  "headers")
    content_type_header: bool = Field(
        False, description="structured mode: also write the content-type: application/cloudevents+json header "
                           "(the CloudEvents Kafka binding's mark, for CloudEvents SDKs, Kafka Connect); costs "
                           "~2-4 us a record on each side, Forge reads the event without it")
    confirm_publish: bool = Field(False, description="await the broker's ack in publish() (slower, per message)")
    linger_ms: float = Field(5, ge=0, description="producer linger.ms")
    fetch_wait_max_ms: int = Field(10, ge=0, le=300000,
                                   description="consumer fetch.wait.max.ms: how long the broker may hold a "
                                               "fetch that has no data yet (librdkafka's default 500; lower: "
                                               "less latency when a record arrives, more fetch requests and "
                                               "broker CPU while a topic is idle)")
    batch_size: int = Field(500, ge=1, description="most records handed to the event loop at once")
    batch_wait_ms: float = Field(0.0, ge=0, description="how long a batch may fill behind its first record: 0 takes "
                                                        "what librdkafka already holds without waiting (latency "
                                                        "added per hop at a low rate when above 0; fewer "
                                                        "hand-overs only when records trickle in)")
    log_every: float = Field(30.0, ge=0, description="seconds between two log lines of one kind from librdkafka "
                             "and client errors (the same message from the same broker, from any client of the "
                             "transport); the first is always logged, those in between are counted and reported "
                             "('N similar line(s) suppressed'); 0 logs every line")
    stall_timeout: float = Field(15.0, gt=0, description="seconds a broker may be up with no ack while messages "
                                                         "wait before the producer is replaced and they are re-sent")
    connect_timeout: float = Field(5.0, gt=0, description="seconds connect() waits for the broker's metadata")
    close_timeout: float = Field(10.0, ge=0, description="seconds close() waits for the broker to acknowledge "
                                                         "what is still queued; what is left then is purged and "
                                                         "each record dead-lettered (undeliverable)")
    replace_timeout: float = Field(10.0, gt=0, description="seconds a replaced producer's purged records are "
                                                           "awaited to be re-sent in publish order on its "
                                                           "successor; a report later than that is dead-lettered "
                                                           "(undeliverable)")
    create_topics: bool = Field(True, description="create a subscribed topic that does not exist yet")
    default_partitions: int = Field(1, ge=1, description="partitions of a topic created on subscribe")
    default_replication: int = Field(1, ge=1, description="replication factor of a topic created on subscribe")
    topics: dict[str, TopicSpec] = Field({},
                                         description="topics created on connect (Forge or Kafka names)")
    config: dict[str, Any] = Field({},
                                   description="extra librdkafka settings for every client (security...)")
    producer: dict[str, Any] = Field({}, description="extra librdkafka settings for the producer")
    consumer: dict[str, Any] = Field({}, description="extra librdkafka settings for consumers")

    @field_validator("config", "producer", "consumer")
    @classmethod
    def _librdkafka_accepts(cls, properties: dict[str, Any], info: Any) -> dict[str, Any]:
        """librdkafka's own verdict at validate time (see librdkafka_config): an unknown property, or
        a value out of its range, is an error here rather than when the plant starts."""
        clients: dict[str, tuple[Literal["producer", "consumer"], ...]] = {
            "config": ("producer", "consumer"), "producer": ("producer",), "consumer": ("consumer",)}
        for client in clients[info.field_name]:
            problem = refusal(properties, client)
            if problem is not None:
                raise ValueError(problem)
        return properties

    @field_validator("producer")
    @classmethod
    def _idempotent_needs_acks_all(cls, properties: dict[str, Any]) -> dict[str, Any]:
        """The transport's producer is idempotent unless told otherwise, and librdkafka then refuses
        any ``acks`` but ``all`` — when the plant starts; say so at validate time instead."""
        acks = str(properties.get("acks", properties.get("request.required.acks", "all"))).lower()
        idempotent = str(properties.get("enable.idempotence", True)).lower() not in ("false", "0")
        if idempotent and acks not in ("all", "-1"):
            raise ValueError(f"acks {acks!r}: the producer is idempotent (enable.idempotence, the default), which "
                             f"needs acks 'all'; drop acks, or set enable.idempotence: false to trade the "
                             f"no-duplicates-on-retry guarantee for it")
        return properties

    def topic_spec(self, topic: str) -> TopicSpec:
        """How to create ``topic``: its entry in ``topics``, else the default partitions and replication."""
        spec = self.topics.get(topic)
        if spec is None:
            spec = TopicSpec(partitions=self.default_partitions, replication=self.default_replication)
        return spec


class KafkaRoute(Settings):
    """An entry of ``params.to_kafka.routes``: an MQTT pattern carried to one Kafka topic, the record key
    (and body fields) taken from levels of the topic each message arrived on."""

    topic: str = Field(min_length=1, description="MQTT-side pattern to read, e.g. factory/+/heartbeat")
    to: str = Field(min_length=1, description="the Kafka-side topic: a Forge name (factory/heartbeat) or the Kafka "
                                              "name (factory.heartbeat)")
    key_from_level: int | None = Field(None, ge=0, description="0-based level of the arrival topic that becomes the "
                                                               "record key (factory/7/heartbeat, 1 -> key 7); null "
                                                               "keeps the message's own key")
    field_from_level: dict[str, int] = Field({}, description="body field -> 0-based topic level written into a JSON "
                                                             "object body when the field is absent")

    @field_validator("to")
    @classmethod
    def _forge_name(cls, value: str) -> str:
        return value.replace(".", "/") if "/" not in value else value

    @model_validator(mode="after")
    def _levels_exist(self) -> Self:
        """Each level named must be in every topic the pattern matches (before a ``#``)."""
        levels = self.topic.split("/")
        fixed = levels.index("#") if "#" in levels else len(levels)
        named = {"key_from_level": self.key_from_level} if self.key_from_level is not None else {}
        named.update({f"field_from_level.{name}": level for name, level in self.field_from_level.items()})
        for where, level in named.items():
            if not 0 <= level < fixed:
                raise ValueError(f"{where}: level {level} is not in every topic {self.topic!r} matches "
                                 f"(levels 0..{fixed - 1})")
        return self


class ToKafka(Settings):
    """``params.to_kafka`` of ``kafka.bridge``: MQTT topics carried to Kafka."""

    topics: list[str] = Field([], description="MQTT-side patterns to read, each to the same topic on Kafka")
    routes: list[KafkaRoute] = Field([], description="MQTT-side patterns to read, each to the Kafka topic it names "
                                                     "(see the KafkaRoute table)")
    types: list[str] | None = Field(None, description="allow-list; null forwards every type")

    @model_validator(mode="after")
    def _something_to_read(self) -> Self:
        if not self.topics and not self.routes:
            raise ValueError("topics and routes are both empty: give at least one pattern to read")
        return self


class ToMqtt(Settings):
    """``params.to_mqtt`` of ``kafka.bridge``: Kafka message types carried to MQTT topics."""

    topics: list[str] = Field(["#"], description="Kafka-side patterns to read")
    routes: dict[str, str] = Field(description="message type -> MQTT topic ('{topic}': the topic it had on Kafka); "
                                               "other types are refused")


class BridgeParams(Settings):
    """``params`` of a ``kafka.bridge`` component."""

    mqtt: str = Field("mqtt", description="name of the MQTT-side transport")
    kafka: str = Field("kafka", description="name of the Kafka-side transport")
    to_kafka: ToKafka | None = Field(None, description="MQTT -> Kafka: topics to read, types allowed")
    to_mqtt: ToMqtt | None = Field(None, description="Kafka -> MQTT: topics to read, a topic per type")
