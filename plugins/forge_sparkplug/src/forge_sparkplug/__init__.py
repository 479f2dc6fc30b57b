"""forge-sparkplug: Sparkplug B 3.0 for Forge, on top of forge-mqtt's broker settings.

``sparkplug.edge_node`` (:class:`EdgeNode`) and ``sparkplug.host`` (:class:`Host`) are the components;
``forge_sparkplug.codec`` reads and writes Sparkplug payloads and topics.
"""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
    from forge_sparkplug.codec import Metric, Payload, PayloadError, decode, encode
    from forge_sparkplug.components.edge_node import EdgeNode
    from forge_sparkplug.components.host import Host
    from forge_sparkplug.settings import DeviceSpec, EdgeNodeParams, HostParams, MetricSpec

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Metric": "forge_sparkplug.codec:Metric",
        "Payload": "forge_sparkplug.codec:Payload",
        "PayloadError": "forge_sparkplug.codec:PayloadError",
        "decode": "forge_sparkplug.codec:decode",
        "encode": "forge_sparkplug.codec:encode",
        "EdgeNode": "forge_sparkplug.components.edge_node:EdgeNode",
        "Host": "forge_sparkplug.components.host:Host",
        "DeviceSpec": "forge_sparkplug.settings:DeviceSpec",
        "EdgeNodeParams": "forge_sparkplug.settings:EdgeNodeParams",
        "HostParams": "forge_sparkplug.settings:HostParams",
        "MetricSpec": "forge_sparkplug.settings:MetricSpec",
    },
)

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
