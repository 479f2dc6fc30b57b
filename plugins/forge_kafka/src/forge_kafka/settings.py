"""Settings of a ``type: kafka`` transport: the JSON Schema the manifest is validated against and
the typed dataclass the transport reads (``transports.<name>.settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from forge_core import ForgeError
from forge_core.transport import CONTENT_MODES

_TOPIC_SPEC: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "partitions": {"type": "integer", "minimum": 1, "default": 1},
        "replication": {"type": "integer", "minimum": 1, "default": 1},
        "config": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "topic configs, e.g. retention.ms"},
    },
}

#: JSON Schema of ``transports.<name>.settings`` for ``type: kafka``.
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["bootstrap"],
    "properties": {
        "bootstrap": {"type": "string", "minLength": 1, "description": "bootstrap.servers, host:port[,host:port]"},
        "client_id": {"type": ["string", "null"]},
        "group_template": {
            "type": "string", "default": "{plant}.{group}:{pattern}",
            "description": "consumer group id; {plant}, {group} (group= or the owner), {pattern}",
        },
        "instance_id": {"type": ["string", "null"],
                        "description": "static membership: group.instance.id prefix, stable per replica"},
        "session_timeout_ms": {"type": "integer", "minimum": 500, "default": 10000},
        "heartbeat_interval_ms": {"type": "integer", "minimum": 100, "default": 3000},
        "max_poll_interval_ms": {"type": "integer", "minimum": 1000, "default": 300000},
        "metadata_refresh_ms": {"type": "integer", "minimum": 100, "default": 5000,
                                "description": "how soon a wildcard subscription sees a new topic"},
        "auto_offset_reset": {"enum": ["earliest", "latest"], "default": "earliest"},
        "max_redeliveries": {"type": "integer", "minimum": 0, "default": 3},
        "retry_backoff": {"type": "number", "minimum": 0, "default": 0.1},
        "dead_letter": {"type": "boolean", "default": True},
        "dead_letter_suffix": {"type": "string", "minLength": 1, "default": ".dlq"},
        "content_mode": {"enum": ["structured", "binary"], "default": "structured",
                         "description": "CloudEvents content mode of published records: structured (one JSON "
                                        "document, one content-type header) or binary (ce_* headers, plain "
                                        "JSON value); received records are read in either"},
        "confirm_publish": {"type": "boolean", "default": False,
                            "description": "await the broker's ack in publish() (slower, per message)"},
        "linger_ms": {"type": "number", "minimum": 0, "default": 5},
        "batch_size": {"type": "integer", "minimum": 1, "default": 500,
                       "description": "most records handed to the event loop at once"},
        "batch_wait_ms": {"type": "number", "minimum": 0, "default": 1.0,
                          "description": "how long a batch may fill behind its first record (latency added per "
                                         "hop at a low rate; fewer hand-overs at a high one)"},
        "stall_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 15.0,
                          "description": "seconds a broker may be up with no ack while messages wait before the "
                                         "producer is replaced and they are re-sent"},
        "connect_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 5.0},
        "create_topics": {"type": "boolean", "default": True,
                          "description": "create a subscribed topic that does not exist yet"},
        "default_partitions": {"type": "integer", "minimum": 1, "default": 1},
        "default_replication": {"type": "integer", "minimum": 1, "default": 1},
        "topics": {"type": "object", "additionalProperties": _TOPIC_SPEC,
                   "description": "topics created on connect (Forge or Kafka names)"},
        "config": {"type": "object", "description": "extra librdkafka settings for every client (security...)"},
        "producer": {"type": "object", "description": "extra librdkafka settings for the producer"},
        "consumer": {"type": "object", "description": "extra librdkafka settings for consumers"},
    },
}


@dataclass(frozen=True)
class TopicSpec:
    partitions: int = 1
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KafkaSettings:
    """Typed ``transports.<name>.settings``; defaults match :data:`SETTINGS_SCHEMA`."""

    bootstrap: str
    client_id: str | None = None
    group_template: str = "{plant}.{group}:{pattern}"
    instance_id: str | None = None
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    metadata_refresh_ms: int = 5000
    auto_offset_reset: str = "earliest"
    max_redeliveries: int = 3
    retry_backoff: float = 0.1
    dead_letter: bool = True
    dead_letter_suffix: str = ".dlq"
    content_mode: str = "structured"
    confirm_publish: bool = False
    linger_ms: float = 5
    batch_size: int = 500
    batch_wait_ms: float = 1.0
    stall_timeout: float = 15.0
    connect_timeout: float = 5.0
    create_topics: bool = True
    default_partitions: int = 1
    default_replication: int = 1
    topics: dict[str, TopicSpec] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    consumer: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, settings: Mapping[str, Any], *, transport: str = "kafka") -> KafkaSettings:
        """Build from a manifest mapping; unknown keys and bad values name the transport and field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ForgeError(f"transport {transport!r} (kafka): unknown setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        if not settings.get("bootstrap"):
            raise ForgeError(f"transport {transport!r} (kafka): setting 'bootstrap' is required (host:port)")
        values = dict(settings)
        topics: dict[str, TopicSpec] = {}
        for name, spec in (values.pop("topics", None) or {}).items():
            try:
                topics[name] = TopicSpec(**(spec or {}))
            except TypeError as exc:
                raise ForgeError(f"transport {transport!r} (kafka): topics.{name}: {exc}") from None
        if values.get("auto_offset_reset", "earliest") not in ("earliest", "latest"):
            raise ForgeError(f"transport {transport!r} (kafka): auto_offset_reset must be 'earliest' or "
                             f"'latest', got {values['auto_offset_reset']!r}")
        if values.get("content_mode", "structured") not in CONTENT_MODES:
            raise ForgeError(f"transport {transport!r} (kafka): content_mode must be one of "
                             f"{', '.join(CONTENT_MODES)}, got {values['content_mode']!r}")
        for name in ("config", "producer", "consumer"):
            values[name] = dict(values.get(name) or {})
        return cls(topics=topics, **values)
