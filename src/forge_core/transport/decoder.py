"""Bytes to envelopes, whichever CloudEvents content mode the sender chose.

A message marked structured (content type ``application/cloudevents+json``: a Kafka ``content-type``
header, the MQTT 5 Content Type), or a JSON object holding ``specversion`` and ``type`` and no type
header (MQTT 3.1.1 has no content type), is one event; otherwise the attributes come from headers
(binary mode). A message with neither is a plain JSON message from a client that knows nothing of
Forge: its type comes from the plant's bindings (a field or the topic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from forge_core.errors import DecodeError
from forge_core.messages.envelope import NO_HEADERS, Envelope
from forge_core.transport import timestamps as _times
from forge_core.transport.cloudevents import CORE_SET as _CORE_SET
from forge_core.transport.cloudevents import EVENT_KEYS as _EVENT_KEYS
from forge_core.transport.cloudevents import STRUCTURED_CONTENT_TYPE, is_structured
from forge_core.transport.cloudevents import too_deep as _too_deep
from forge_core.transport.event_shape import ForgeEvent
from forge_core.transport.timestamps import fast_parse_time
from forge_core.transport.topics import matches

_new_envelope = object.__new__  # an Envelope without its __init__ (Decoder._event)
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_MsgspecError = msgspec.MsgspecError  # DecodeError (not JSON) and ValidationError (not the shape)
_decode_event = msgspec.json.Decoder(ForgeEvent).decode

#: A time's microseconds from its last seven characters ("ffffffZ"): "000".."999" -> 0..999,000 and
#: "000Z".."999Z" -> 0..999. Two slices and two lookups cost ~350 instructions less than checking the
#: digits (``isdigit``, ``isascii``, the length, the "Z") and ``int``; the same value.
_MILLI_MICROS = {text: n * 1000 for n, text in enumerate(_times.DIGITS3)}.get
_MICROS_Z = {text + "Z": n for n, text in enumerate(_times.DIGITS3)}.get


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
        #: the time text of the last event decode_structured read, and its value: the events of one
        #: publish_batch call share one time, parsed once (None: nothing read yet). Two attributes,
        #: not a tuple: an event of its own time (per-message publish) pays no tuple for it
        self._last_text: str | None = None
        self._last_time = 0.0
        #: "YYYY-MM-DDTHH:MM:SS.fff" of the last time decode_structured parsed by its second's cache, and
        #: that millisecond in µs since 1970: a stream's times come in order, many to a millisecond when
        #: the rate is high, and such a time then costs one slice, a compare and one lookup ("\0": none yet)
        self._milli_head = "\0"
        self._milli_micros = 0

    def decode(self, topic: str, body: bytes, headers: Mapping[str, str]) -> Envelope:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"body on topic {topic!r} is not JSON: {exc}") from None
        if _too_deep(body, payload):
            raise DecodeError(f"body on topic {topic!r} nests deeper than Forge can re-encode (255 levels)")
        structured = bool(headers) and is_structured(headers)
        if structured or (type(payload) is dict and "specversion" in payload and "type" in payload
                          and not self._has_type_header(headers)):
            # Marked as structured, or an event without the mark (MQTT 3.1.1 has no content type).
            envelope = self._event(topic, payload)
            if envelope is not None:
                return envelope
            payload, attrs, extensions = self._unwrap(topic, payload)
        else:
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
            time = fast_parse_time(attrs["time"]) if "time" in attrs else self._now()
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

    def decode_structured(self, topic: str, body: bytes) -> Envelope | None:
        """The fast path of a body marked structured: its envelope if it is an event as Forge
        writes it, else None (then :meth:`decode` decides, and says what is wrong).

        An event with exactly Forge's attributes, its string ones strings (``type``, ``id`` and
        ``source`` not empty), is read by msgspec into a :class:`ForgeEvent` (the shape and the
        attributes' types checked in C) with ``data`` left as its JSON text, which ``orjson.loads``
        reads as it reads any body (numbers and errors as everywhere else in Forge). Whatever does
        not fit that shape, fails either parse, or may nest too deep takes
        :meth:`decode_structured_dict`, the same outcome as before msgspec (a test compares the
        two on good and broken events)."""
        if len(body) >= 512 and body.count(b"[") + body.count(b"{") >= 250:
            return self.decode_structured_dict(topic, body)  # too_deep's test needs the whole event
        try:
            event = _decode_event(body)
            # orjson reads a msgspec.Raw only through a buffer: as a bytes copy ~300 instructions a record
            # less than through a memoryview (orjson's memoryview path costs ~1,300 more than its bytes one)
            payload = _loads(bytes(event.data))
        except (_MsgspecError, _JSONDecodeError):
            return self.decode_structured_dict(topic, body)
        time_text = event.time
        if time_text == self._last_text:
            time = self._last_time
        elif time_text[:23] == self._milli_head and (units := _MICROS_Z(time_text[23:])) is not None:
            # the millisecond of the last time parsed (already checked): its last three digits and the
            # "Z" by one lookup (~1,700 instructions a record less than the second's two; the same value)
            time = (self._milli_micros + units) / 1_000_000
            self._last_text = time_text
            self._last_time = time
        else:  # a batch's events share their time: one compare, not a parse
            # fast_parse_time(time_text), its cached second inline; the six digits and the "Z" by two
            # lookups, which also check the shape (exactly 27 characters, ASCII digits)
            head, micros = _times._parse_cache
            if (time_text[:20] == head and (thousands := _MILLI_MICROS(time_text[20:23])) is not None
                    and (units := _MICROS_Z(time_text[23:])) is not None):
                micros += thousands
                self._milli_head = time_text[:23]
                self._milli_micros = micros
                time = (micros + units) / 1_000_000
            else:
                try:
                    time = fast_parse_time(time_text)
                except ValueError:
                    return None
            self._last_text = time_text
            self._last_time = time
        version_text = event.schemaversion
        if version_text == "1":
            version = 1
        else:
            try:
                version = int(version_text)
            except ValueError:
                return None
        envelope = _new_envelope(Envelope)  # Envelope(...) without calling the class, as below
        envelope.type = event.type
        envelope.payload = payload
        envelope.source = event.source
        envelope.id = event.id
        envelope.time = time
        envelope.key = event.partitionkey
        envelope.schema_version = version
        envelope.headers = NO_HEADERS
        envelope.topic = topic
        return envelope

    def decode_structured_dict(self, topic: str, body: bytes) -> Envelope | None:
        """:meth:`decode_structured` by ``orjson.loads`` of the whole event, then :meth:`_event`: every
        body msgspec's shape does not take (an extension, a wrong or missing attribute, bad JSON, a
        body that may nest too deep), with the outcome the fast path gives (envelope or None). Only
        such bodies come here, so it needs no inline copy of the fast path's time and envelope."""
        try:
            event = _loads(body)
        except _JSONDecodeError:
            return None
        if type(event) is not dict or (len(body) >= 512 and _too_deep(body, event)):
            return None
        return self._event(topic, event)

    def _event(self, topic: str, event: Any) -> Envelope | None:
        """The hot path of structured mode: a well-formed event as Forge writes it, straight to an
        envelope; None for anything else (the general path then decides, with its errors)."""
        if type(event) is not dict:
            return None
        get = event.get
        type_, id_, source, time_text = get("type"), get("id"), get("source"), get("time")
        version_text, key = get("schemaversion", "1"), get("partitionkey")
        if (type(type_) is not str or not type_ or type(id_) is not str or not id_ or type(source) is not str
                or not source or type(time_text) is not str or type(version_text) is not str
                or (key is not None and type(key) is not str)):
            return None
        extensions: dict[str, str] = NO_HEADERS  # none: the shared read-only empty ones (no dict a record)
        if not event.keys() <= _EVENT_KEYS:  # extension attributes (one set operation when there are none)
            extensions = {}
            for name, value in event.items():
                if name not in _EVENT_KEYS:
                    if type(value) is not str or name == "data_base64":
                        return None
                    extensions[name] = value
        try:
            time = fast_parse_time(time_text)
            version = 1 if version_text == "1" else int(version_text)
        except ValueError:
            return None
        # Envelope(type_, data, source, id_, time, key, version, extensions, topic) without calling the class
        # (a type_call and a frame, ~1,000 instructions a record; as MessageBus.publish does)
        envelope = _new_envelope(Envelope)
        envelope.type = type_
        envelope.payload = get("data")
        envelope.source = source
        envelope.id = id_
        envelope.time = time
        envelope.key = key
        envelope.schema_version = version
        envelope.headers = extensions
        envelope.topic = topic
        return envelope

    def _has_type_header(self, headers: Mapping[str, str]) -> bool:
        return bool(headers) and self.prefix + "type" in headers

    @staticmethod
    def _unwrap(topic: str, event: Any) -> tuple[Any, dict[str, str], dict[str, str]]:
        """A structured-mode event: (data, core attributes, extension attributes)."""
        if type(event) is not dict:
            raise DecodeError(f"message on topic {topic!r} is marked {STRUCTURED_CONTENT_TYPE} but its body is "
                              f"not a JSON object")
        if "data_base64" in event:
            raise DecodeError(f"message on topic {topic!r}: structured event with data_base64 (binary data); "
                              f"Forge payloads are JSON")
        data = event.pop("data", None)
        attrs: dict[str, str] = {}
        extensions: dict[str, str] = {}
        for name, value in event.items():
            if type(value) is not str:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise DecodeError(f"message on topic {topic!r}: attribute {name!r} of the structured event is "
                                      f"{type(value).__name__}, not a string or number")
                value = str(value)
            if name in _CORE_SET:
                attrs[name] = value
            else:
                extensions[name] = value
        return data, attrs, extensions

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
