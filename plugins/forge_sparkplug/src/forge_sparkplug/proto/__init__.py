"""The Sparkplug B payload's protobuf stubs (generated from ``sparkplug_b.proto``; see ``generate``)."""

from forge_sparkplug.proto import sparkplug_b_pb2

__all__ = ["sparkplug_b_pb2"]
