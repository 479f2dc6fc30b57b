"""MQTT-style topic patterns: ``+`` matches one level, ``#`` the rest (including none)."""

from __future__ import annotations

from functools import lru_cache


def validate_pattern(pattern: str) -> None:
    """Raise ``ValueError`` naming the fault if ``pattern`` is not a valid MQTT filter."""
    if not pattern:
        raise ValueError("topic pattern is empty")
    levels = pattern.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"topic pattern {pattern!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"topic pattern {pattern!r}: '+' must be a whole level")


def validate_topic(topic: str) -> None:
    if not topic:
        raise ValueError("topic is empty")
    if "+" in topic or "#" in topic:
        raise ValueError(f"topic {topic!r}: wildcards are for subscriptions, not for publishing")


@lru_cache(maxsize=4096)
def _split(pattern: str) -> tuple[str, ...]:
    return tuple(pattern.split("/"))


def matches(pattern: str, topic: str) -> bool:
    """True when ``topic`` matches the subscription ``pattern``."""
    if pattern == topic:
        return True
    p_levels = _split(pattern)
    t_levels = topic.split("/")
    # Topics starting with '$' are not matched by leading wildcards (MQTT 4.7.2).
    if topic.startswith("$") and p_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(p_levels):
        if level == "#":
            return True
        if index >= len(t_levels):
            return False
        if level != "+" and level != t_levels[index]:
            return False
    return len(p_levels) == len(t_levels)


def is_wildcard(pattern: str) -> bool:
    return "+" in pattern or "#" in pattern
