"""CloudEvents on the wire, in both content modes: the codec's public names in one place.

Binary mode: attributes in headers, the payload as the plain JSON body. Kafka headers carry them
as ``ce_<name>``; MQTT 5 user properties by bare name. Structured mode: one JSON document holding
the attributes and the payload under ``data``, marked by the content type
``application/cloudevents+json`` (a Kafka ``content-type`` header, the MQTT 5 Content Type); on
Kafka it costs one header instead of six or more, which is most of what librdkafka spends per
message. The decoder reads both whatever the sender chose. A message with neither is a plain JSON
message from a client that knows nothing of Forge: its type comes from the plant's bindings (a
field or the topic).

The work lives in one module per job: :mod:`~forge_core.transport.cloudevents` (names, content
types), :mod:`~forge_core.transport.timestamps` (RFC 3339 on the hot path),
:mod:`~forge_core.transport.encoder` and :mod:`~forge_core.transport.decoder`.
"""

from __future__ import annotations

from forge_core.transport.cloudevents import CONTENT_MODES, CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, is_structured
from forge_core.transport.decoder import Decoder, TypeBinding
from forge_core.transport.encoder import (
    encode,
    encode_body,
    encode_headers,
    encode_structured,
    encode_structured_many,
)
from forge_core.transport.timestamps import fast_format_time, fast_parse_time

__all__ = [
    "CONTENT_MODES",
    "CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "Decoder",
    "TypeBinding",
    "encode",
    "encode_body",
    "encode_headers",
    "encode_structured",
    "encode_structured_many",
    "fast_format_time",
    "fast_parse_time",
    "is_structured",
]
