"""CloudEvents' names in Forge: the attributes, the content types, the mark of structured mode, and
the JSON limits both directions share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

#: The attributes Forge reads as the envelope's own (all others are extensions, kept as headers).
CORE = ("specversion", "id", "source", "type", "time", "partitionkey", "schemaversion", "datacontenttype")
CORE_SET = frozenset(CORE)
#: The keys of a structured event that are no extension.
EVENT_KEYS = CORE_SET | {"data"}

CONTENT_TYPE = "application/json"
#: Content type of a structured-mode event (CloudEvents JSON format).
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
#: The transport settings' values for ``content_mode``.
CONTENT_MODES = ("binary", "structured")


def is_structured(headers: Mapping[str, str]) -> bool:
    """Whether ``headers`` mark a structured-mode event (its content type)."""
    content_type = headers.get("content-type")
    return content_type is not None and content_type.startswith(STRUCTURED_CONTENT_TYPE)


def too_deep(body: bytes, payload: Any) -> bool:
    """Whether ``payload`` nests deeper than Forge can write back (orjson reads 1024 levels but
    writes 255: such a message would break the bridge, the dead-letter topic and the trace that
    re-encode it). Counting brackets is C-speed; only a body with hundreds of them is re-encoded.
    A body that parsed and is shorter than 512 bytes is not even counted (most messages; callers on
    the hot path test the length first): 256 levels take 256 opening and 256 closing brackets."""
    if len(body) < 512 or body.count(b"[") + body.count(b"{") < 250:
        return False
    try:
        orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return True
    return False
