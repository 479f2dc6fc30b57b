"""CloudEvents binary content mode: attributes in headers, the payload as the plain JSON body.

Kafka headers carry attributes as ``ce_<name>``; MQTT 5 user properties carry them by bare
name. A message with no ``type`` attribute is a plain JSON message from a client that knows
nothing of Forge: its type comes from the plant's bindings (a field or the topic).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from forge_core.errors import DecodeError
from forge_core.messages.envelope import Envelope, format_time, parse_time
from forge_core.transport.topics import matches

_CORE = ("specversion", "id", "source", "type", "time", "partitionkey", "schemaversion", "datacontenttype")
_CORE_SET = frozenset(_CORE)

CONTENT_TYPE = "application/json"


def encode_body(payload: Any) -> bytes:
    return orjson.dumps(payload)


# -- time stamps on the hot path -----------------------------------------------------------------
# Every message carries its time as RFC 3339 text, and datetime takes ~5 µs to write it. Only the
# sub-second part changes between most messages, so the date and clock part is formatted once per
# second. The result is exactly ``format_time``'s (same rounding; checked against it in the tests).

_format_cache: tuple[float, str] = (math.nan, "")  # (whole second, "YYYY-MM-DDTHH:MM:SS"), swapped whole


def fast_format_time(epoch: float) -> str:
    """``format_time(epoch)``, the date and clock part cached per second."""
    frac, whole = math.modf(epoch)
    micros = round(frac * 1e6)  # half to even, as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    global _format_cache
    second, head = _format_cache
    if second != whole:
        text = format_time(whole)
        if len(text) != 27:  # no fast path for other widths
            return format_time(epoch)
        head = text[:19]
        _format_cache = (whole, head)
    return f"{head}.{micros:06d}Z"


@lru_cache(maxsize=64)
def _header_names(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + name for name in ("specversion", "id", "source", "type", "time", "schemaversion",
                                            "partitionkey"))


def encode_headers(envelope: Envelope, prefix: str = "ce_") -> dict[str, str]:
    spec, id_, source, type_, time_, version, key = _header_names(prefix)
    schema_version = envelope.schema_version
    headers = {
        spec: "1.0",
        id_: envelope.id,
        source: envelope.source,
        type_: envelope.type,
        time_: fast_format_time(envelope.time),
        version: "1" if schema_version == 1 else str(schema_version),
    }
    if envelope.key is not None:
        headers[key] = envelope.key
    if envelope.headers:
        for name, value in envelope.headers.items():
            headers[prefix + name] = value
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
        #: header name -> (bare name, is a core attribute), or None for a header without the prefix
        self._names: dict[str, tuple[str, bool] | None] = {}

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
            version_text = attrs.get("schemaversion")
            version = 1 if version_text is None or version_text == "1" else int(version_text)
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
        names = self._names
        for name, value in headers.items():
            try:
                kind = names[name]
            except KeyError:
                kind = self._classify(name)
            if kind is None:
                continue
            if kind[1]:
                attrs[kind[0]] = value
            else:
                extensions[kind[0]] = value
        return attrs, extensions

    def _classify(self, name: str) -> tuple[str, bool] | None:
        prefix = self.prefix
        kind = None if prefix and not name.startswith(prefix) else (name[len(prefix):], name[len(prefix):] in _CORE_SET)
        if len(self._names) < 4096:  # header names are few; a flood of distinct ones is not cached
            self._names[name] = kind
        return kind

    def _binding_for(self, topic: str) -> TypeBinding | None:
        for binding in self.bindings:
            if matches(binding.topic, topic):
                return binding
        return None
