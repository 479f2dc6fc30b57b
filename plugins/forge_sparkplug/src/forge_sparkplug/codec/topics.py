"""Sparkplug topics (spec §4.1): ``spBv1.0/<group>/<verb>/<edge node>[/<device>]`` and
``spBv1.0/STATE/<host id>``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DEVICE_VERBS", "NAMESPACE", "NODE_VERBS", "Topic", "TopicError", "check_id", "parse", "state_topic"]

NAMESPACE = "spBv1.0"
NODE_VERBS = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_VERBS = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})


class TopicError(ValueError):
    """Not a Sparkplug B topic, or an id that cannot be one of its levels."""


def check_id(kind: str, value: str) -> str:
    """``value`` if it may be a Group, Edge Node, Device or Host ID: non-empty UTF-8 without ``+ / #``
    [tck-id-topic-structure-namespace-valid-group-id and its siblings]."""
    if not value or any(c in value for c in "+/#"):
        raise TopicError(f"{kind} {value!r}: a Sparkplug ID is a non-empty string without '+', '/' or '#'")
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    group: str
    verb: str
    node: str
    device: str | None = None

    def __str__(self) -> str:
        base = f"{NAMESPACE}/{self.group}/{self.verb}/{self.node}"
        return base if self.device is None else f"{base}/{self.device}"


@lru_cache(maxsize=4096)  # a host reads the same few topics over and over; a Topic is immutable
def parse(topic: str) -> Topic | None:
    """A Sparkplug B topic's parts; None for STATE topics; :class:`TopicError` if malformed (not remembered)."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != NAMESPACE:
        raise TopicError(f"{topic!r} is not in the {NAMESPACE} namespace")
    if parts[1] == "STATE":
        return None
    if len(parts) == 4 and parts[2] in NODE_VERBS:
        return Topic(parts[1], parts[2], parts[3])
    if len(parts) == 5 and parts[2] in DEVICE_VERBS:
        return Topic(parts[1], parts[2], parts[3], parts[4])
    raise TopicError(f"{topic!r}: expected {NAMESPACE}/<group>/N*/<node> or {NAMESPACE}/<group>/D*/<node>/<device>")


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"
