"""An edge node's state without I/O: its metric table and its sequence numbers."""

from forge_sparkplug.node.metrics import Entry, MetricTable, UnknownMetric
from forge_sparkplug.node.session import BdSeq, Seq

__all__ = ["BdSeq", "Entry", "MetricTable", "Seq", "UnknownMetric"]
