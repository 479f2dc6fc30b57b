"""MQTT-style topic patterns: ``+`` matches one level, ``#`` the rest (including none)."""

from __future__ import annotations

import re
from functools import lru_cache

#: The longest value (in characters) that :func:`topic_level` lets become a topic level.
MAX_TOPIC_LEVEL = 200

# '/' separates levels, '+' and '#' are wildcards, NUL is forbidden in MQTT strings, and other
# control characters are refused by brokers or make logs and terminals lie.
_NOT_IN_A_LEVEL = re.compile(r"[/+#\x00-\x1f\x7f-\x9f]")
_WHY = {"/": "it holds '/' (a level separator)", "+": "it holds '+' (an MQTT wildcard)",
        "#": "it holds '#' (an MQTT wildcard)", "\x00": "it holds NUL"}


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


def topic_level(value: object) -> str:
    """``str(value)`` as one topic level, or ``ValueError`` saying why it cannot be one.

    Use it whenever a value that came in a message (a source, a machine id, a sensor name)
    becomes part of a topic: ``f"forge/status/{topic_level(source)}"``. Refused rather than
    escaped: an escaped name would be a second name for the same thing that every subscriber
    would have to know. Refused: empty, longer than :data:`MAX_TOPIC_LEVEL`, holding ``/``,
    ``+``, ``#``, NUL or another control character, or starting with ``$`` (broker topics).
    """
    text = value if type(value) is str else str(value)
    if 0 < len(text) <= MAX_TOPIC_LEVEL and text[0] != "$" and _NOT_IN_A_LEVEL.search(text) is None:
        return text
    if not text:
        why = "it is empty"
    elif len(text) > MAX_TOPIC_LEVEL:
        why = f"it is longer than {MAX_TOPIC_LEVEL} characters"
    elif text[0] == "$":
        why = "it starts with '$' (reserved for the broker's own topics)"
    else:
        found = _NOT_IN_A_LEVEL.search(text)
        assert found is not None
        why = _WHY.get(found.group(), f"it holds the control character {found.group()!r}")
    raise ValueError(f"{text[:60]!r}{'...' if len(text) > 60 else ''} is not a topic level: {why}")


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
