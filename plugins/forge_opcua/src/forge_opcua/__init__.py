"""forge-opcua: OPC UA for Forge plants on asyncua — a subscribing source with adaptive sampling and
reconnect, a simulated PLC, Basic256Sha256 security."""

from forge_opcua.client.convert import DATA_CHANGE, Tag, json_value, payload_of, quality_of
from forge_opcua.client.nodes import NodeError, resolve_node_id
from forge_opcua.components.plc_simulator import PlcSimulator
from forge_opcua.components.source import QUEUE_DEPTH, SOURCE_STATUS, OpcUaSource, SourceError
from forge_opcua.security import CertificateTrust, SecurityError
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
from forge_opcua.simulator.model import PlcModel
from forge_opcua.simulator.server import PlcServer, node_id_text

__version__ = "0.1.0"

#: Every message type forge_opcua owns (its schemas are registered by the plugin).
MESSAGE_TYPES = (DATA_CHANGE, SOURCE_STATUS, QUEUE_DEPTH)

__all__ = ["DATA_CHANGE", "MESSAGE_TYPES", "QUEUE_DEPTH", "SOURCE_STATUS", "BrowseSpec", "CertificateTrust",
           "ClientSecurity", "MachineTiming", "NodeError", "NodeSpec", "OpcUaSource", "PlcModel", "PlcServer",
           "PlcSimulator", "PlcSimulatorParams", "SecurityError", "ServerSecurity", "SourceError", "SourceParams",
           "Tag", "__version__", "check_node_id", "json_value", "node_id_text", "payload_of", "quality_of",
           "resolve_node_id"]
