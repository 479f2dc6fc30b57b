"""forge-sparkplug: Sparkplug B 3.0 for Forge, on top of forge-mqtt's broker settings.

``sparkplug.edge_node`` (:class:`EdgeNode`) and ``sparkplug.host`` (:class:`Host`) are the components;
``forge_sparkplug.codec`` reads and writes Sparkplug payloads and topics.
"""

from forge_sparkplug.codec import Metric, Payload, PayloadError, decode, encode
from forge_sparkplug.components.edge_node import EdgeNode
from forge_sparkplug.components.host import Host
from forge_sparkplug.settings import DeviceSpec, EdgeNodeParams, HostParams, MetricSpec

__version__ = "0.1.0"

__all__ = [
    "DeviceSpec",
    "EdgeNode",
    "EdgeNodeParams",
    "Host",
    "HostParams",
    "Metric",
    "MetricSpec",
    "Payload",
    "PayloadError",
    "__version__",
    "decode",
    "encode",
]
