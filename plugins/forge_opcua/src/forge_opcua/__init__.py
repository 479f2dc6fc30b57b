"""forge-opcua: OPC UA for Forge plants on asyncua — a subscribing source with adaptive sampling and
reconnect, a simulated PLC, Basic256Sha256 security."""

from forge_opcua.client.convert import DATA_CHANGE, Tag, json_value, payload_of, quality_of
from forge_opcua.settings import (
    BrowseSpec,
    ClientSecurity,
    MachineTiming,
    NodeSpec,
    PlcSimulatorParams,
    ServerSecurity,
    SourceParams,
    check_node_id,
)

__version__ = "0.1.0"

__all__ = ["DATA_CHANGE", "BrowseSpec", "ClientSecurity", "MachineTiming", "NodeSpec", "PlcSimulatorParams",
           "ServerSecurity", "SourceParams", "Tag", "__version__", "check_node_id", "json_value", "payload_of",
           "quality_of"]
