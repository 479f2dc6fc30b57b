"""A host application's view of the edge nodes, without I/O."""

from forge_sparkplug.host.state import BAD, GOOD, STALE, DeviceState, MetricState, NodeState

__all__ = ["BAD", "GOOD", "STALE", "DeviceState", "MetricState", "NodeState"]
