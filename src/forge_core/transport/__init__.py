"""Public API for transport authors: the contract, the factory's context, the in-memory
reference transport, topic matching, the CloudEvents codec and hop marking.

Transport plugins import from here only; the submodules are private and may change.
"""

from forge_core.transport.base import (
    BatchCallback,
    DeliveryGuarantee,
    Health,
    MessageCallback,
    PartitionChange,
    PartitionListener,
    PartitionListeners,
    Subscription,
    Transport,
    TransportContext,
    TransportFactory,
    UndeliverableCallback,
)
from forge_core.transport.codec import (
    CONTENT_MODES,
    CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    Decoder,
    TypeBinding,
    encode,
    encode_body,
    encode_headers,
    encode_structured,
    encode_structured_many,
    fast_format_time,
    fast_parse_time,
    is_structured,
)
from forge_core.transport.faults import Faults
from forge_core.transport.hops import HOPS_HEADER, cross
from forge_core.transport.memory import MemoryHub, MemorySettings, MemoryTransport
from forge_core.transport.self_connect import (
    SelfConnectionError,
    refuse_self_connection,
    reset_on_close,
    self_connected,
)
from forge_core.transport.topics import is_wildcard, matches, topic_level, validate_pattern, validate_topic

__all__ = [
    "CONTENT_MODES",
    "CONTENT_TYPE",
    "HOPS_HEADER",
    "STRUCTURED_CONTENT_TYPE",
    "BatchCallback",
    "Decoder",
    "DeliveryGuarantee",
    "Faults",
    "Health",
    "MemoryHub",
    "MemorySettings",
    "MemoryTransport",
    "MessageCallback",
    "PartitionChange",
    "PartitionListener",
    "PartitionListeners",
    "SelfConnectionError",
    "Subscription",
    "Transport",
    "TransportContext",
    "TransportFactory",
    "TypeBinding",
    "UndeliverableCallback",
    "cross",
    "encode",
    "encode_body",
    "encode_headers",
    "encode_structured",
    "encode_structured_many",
    "fast_format_time",
    "fast_parse_time",
    "is_structured",
    "is_wildcard",
    "matches",
    "refuse_self_connection",
    "reset_on_close",
    "self_connected",
    "topic_level",
    "validate_pattern",
    "validate_topic",
]
