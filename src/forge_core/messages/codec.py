"""CloudEvents binary content mode: attributes in headers, the payload as the plain JSON body.

Kafka headers carry attributes as ``ce_<name>``; MQTT 5 user properties carry them by bare
name. A message with no ``type`` attribute is a plain JSON message from a client that knows
nothing of Forge: its type comes from the plant's bindings (a field or the topic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from forge_core.errors import DecodeError
from forge_core.messages.envelope import Envelope, format_time, parse_time
from forge_core.transport.topics import matches

_CORE = ("specversion", "id", "source", "type", "time", "partitionkey", "schemaversion", "datacontenttype")

CONTENT_TYPE = "application/json"


def encode_body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def encode_headers(envelope: Envelope, prefix: str = "ce_") -> dict[str, str]:
    headers = {
        f"{prefix}specversion": "1.0",
        f"{prefix}id": envelope.id,
        f"{prefix}source": envelope.source,
        f"{prefix}type": envelope.type,
        f"{prefix}time": format_time(envelope.time),
        f"{prefix}schemaversion": str(envelope.schema_version),
    }
    if envelope.key is not None:
        headers[f"{prefix}partitionkey"] = envelope.key
    for name, value in envelope.headers.items():
        headers[f"{prefix}{name}"] = value
    return headers


def encode(envelope: Envelope, prefix: str = "ce_") -> tuple[bytes, dict[str, str]]:
    """Body and headers for a transport that speaks binary mode."""
    return encode_body(envelope.payload), encode_headers(envelope, prefix)


@dataclass
class TypeBinding:
    """How to type a plain JSON message arriving on ``topic`` (an MQTT-style pattern)."""

    topic: str
    type: str | None = None
    type_field: str | None = None
    type_map: dict[str, str] = field(default_factory=dict)
    source_field: str | None = None
    key_field: str | None = None

    def resolve_type(self, payload: Any) -> str | None:
        if self.type is not None:
            return self.type
        if self.type_field and isinstance(payload, dict) and self.type_field in payload:
            value = str(payload[self.type_field])
            return self.type_map.get(value, value if not self.type_map else None)
        return None


class Decoder:
    """Turns (topic, body, headers) into an :class:`Envelope` or raises :class:`DecodeError`."""

    def __init__(
        self,
        bindings: Sequence[TypeBinding] = (),
        *,
        prefix: str = "ce_",
        ids: Callable[[], str],
        clock_time: Callable[[], float],
        infer_type: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        self.bindings = list(bindings)
        self.prefix = prefix
        self._ids = ids
        self._now = clock_time
        self._infer = infer_type

    def decode(self, topic: str, body: bytes, headers: Mapping[str, str]) -> Envelope:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"body on topic {topic!r} is not JSON: {exc}") from None
        attrs, extensions = self._split(headers)
        type_ = attrs.get("type")
        binding = None
        if not type_:
            binding = self._binding_for(topic)
            if binding is not None:
                type_ = binding.resolve_type(payload)
            if not type_ and self._infer is not None:
                type_ = self._infer(topic, payload)
            if not type_:
                raise DecodeError(
                    f"message on topic {topic!r} has no type: no 'type' header and no binding in the "
                    f"manifest gives one (add a binding with 'type' or 'type_field' for this topic)"
                )
        try:
            time = parse_time(attrs["time"]) if "time" in attrs else self._now()
            version = int(attrs.get("schemaversion", 1))
        except ValueError as exc:
            raise DecodeError(f"message on topic {topic!r}: bad header value: {exc}") from None
        source = attrs.get("source")
        key = attrs.get("partitionkey")
        if binding is not None and isinstance(payload, dict):
            if not source and binding.source_field and binding.source_field in payload:
                source = str(payload[binding.source_field])
            if key is None and binding.key_field and binding.key_field in payload:
                key = str(payload[binding.key_field])
        return Envelope(
            type=type_,
            payload=payload,
            source=source or f"topic:{topic}",
            id=attrs.get("id") or self._ids(),
            time=time,
            key=key,
            schema_version=version,
            headers=extensions,
            topic=topic,
        )

    def _split(self, headers: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        attrs: dict[str, str] = {}
        extensions: dict[str, str] = {}
        prefix = self.prefix
        cut = len(prefix)
        for name, value in headers.items():
            if prefix and not name.startswith(prefix):
                continue
            bare = name[cut:]
            if bare in _CORE:
                attrs[bare] = value
            else:
                extensions[bare] = value
        return attrs, extensions

    def _binding_for(self, topic: str) -> TypeBinding | None:
        for binding in self.bindings:
            if matches(binding.topic, topic):
                return binding
        return None
