"""Topic administration: create the topics a plant declares, and map Forge topics to Kafka names.

Forge topics are MQTT-style (``plant/m1/reading``); Kafka topic names allow only
``[A-Za-z0-9._-]``, so each ``/`` becomes ``.`` and a ``.`` inside a Forge level is refused (it
would make the mapping ambiguous). Wildcard patterns become anchored regexes, which librdkafka
resolves against the broker's topic list (``^plant\\.[^.]+\\.reading$``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import lru_cache

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from forge_core import TransportError

from forge_kafka.settings import TopicSpec

log = logging.getLogger("forge.kafka.admin")

_LEVEL = re.compile(r"[A-Za-z0-9_-]+")


@lru_cache(maxsize=4096)
def to_kafka(topic: str) -> str:
    """``plant/m1/reading`` → ``plant.m1.reading``; ValueError naming the level that cannot map."""
    if not topic:
        raise ValueError("topic is empty")
    for level in topic.split("/"):
        if not _LEVEL.fullmatch(level):
            raise ValueError(f"topic {topic!r}: level {level!r} cannot become part of a Kafka topic name "
                             "(letters, digits, '_' and '-' only; '/' maps to '.')")
    name = topic.replace("/", ".")
    if len(name) > 249:
        raise ValueError(f"topic {topic!r}: longer than Kafka's 249 characters")
    return name


@lru_cache(maxsize=4096)
def to_forge(kafka_topic: str) -> str:
    """``plant.m1.reading`` → ``plant/m1/reading``."""
    return kafka_topic.replace(".", "/")


def pattern_to_kafka(pattern: str) -> str:
    """A Forge subscription pattern as a librdkafka subscription: a name, or ``^regex$`` for wildcards."""
    if "+" not in pattern and "#" not in pattern:
        return to_kafka(pattern)
    parts: list[str] = []
    levels = pattern.split("/")
    for level in levels:
        if level == "#":
            # '#' also matches the parent level itself: a/# matches a, a.b, a.b.c
            if not parts:
                return "^[^_].*$"  # everything but internal topics (__consumer_offsets)
            return "^" + r"\.".join(parts) + r"(\..+)?$"
        if level == "+":
            parts.append("[^.]+")
        else:
            if not _LEVEL.fullmatch(level):
                raise ValueError(f"topic pattern {pattern!r}: level {level!r} cannot map to a Kafka topic name")
            parts.append(level)
    return "^" + r"\.".join(parts) + "$"


def _kafka_name(name: str) -> str:
    """Settings may name topics either way: ``plant/orders`` or ``plant.orders``."""
    return name if "/" not in name and "." in name else to_kafka(name)


def ensure_topics(admin: AdminClient, topics: Mapping[str, TopicSpec], *, broker: str, transport: str,
                  timeout: float = 10.0) -> list[str]:
    """Create the missing ``topics`` (Forge or Kafka names); returns the Kafka names created.

    A topic that already exists is left alone (its partition count is not changed: shrinking is
    impossible and growing moves keys to other partitions, which breaks per-key order).
    """
    if not topics:
        return []
    new = [NewTopic(_kafka_name(name), num_partitions=spec.partitions, replication_factor=spec.replication,
                    config=dict(spec.config)) for name, spec in topics.items()]
    try:
        futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    except KafkaException as exc:
        raise TransportError(f"kafka transport {transport!r}: cannot create topics on {broker}: {exc}") from None
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise TransportError(
                f"kafka transport {transport!r}: creating topic {name!r} on {broker} failed: {exc}") from None
    if created:
        log.info("kafka transport %s created topics %s on %s", transport, ", ".join(created), broker)
    return created


def topic_max_message_bytes(admin: AdminClient, topic: str, timeout: float = 10.0) -> int | None:
    """The topic's ``max.message.bytes`` (the broker's answer, its default included); None if the
    broker does not say (blocking: run it in an executor)."""
    from confluent_kafka.admin import ConfigResource, ResourceType
    try:
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=timeout)
        entries = next(iter(futures.values())).result(timeout)
        value = entries.get("max.message.bytes")
        return int(value.value) if value is not None and value.value is not None else None
    except (KafkaException, ValueError, TimeoutError) as exc:
        log.warning("max.message.bytes of %s unknown: %s", topic, exc)
        return None
