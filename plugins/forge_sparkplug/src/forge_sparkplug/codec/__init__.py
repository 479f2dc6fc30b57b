"""Sparkplug B on the wire: datatypes, payloads (protobuf; STATE is JSON) and topics."""

from forge_sparkplug.codec.datatypes import BY_NAME, BY_NUMBER, DatatypeError, number_of
from forge_sparkplug.codec.payload import Metric, Payload, PayloadError, decode, encode, read_state, state_body
from forge_sparkplug.codec.topics import NAMESPACE, Topic, TopicError, check_id, parse, state_topic

__all__ = [
    "BY_NAME",
    "BY_NUMBER",
    "NAMESPACE",
    "DatatypeError",
    "Metric",
    "Payload",
    "PayloadError",
    "Topic",
    "TopicError",
    "check_id",
    "decode",
    "encode",
    "number_of",
    "parse",
    "read_state",
    "state_body",
    "state_topic",
]
