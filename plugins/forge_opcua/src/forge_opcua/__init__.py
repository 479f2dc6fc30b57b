"""forge-opcua: OPC UA for Forge plants on asyncua — a subscribing source with adaptive sampling and
reconnect, a simulated PLC, Basic256Sha256 security.

The names that need asyncua, cryptography or pydantic are imported on first use (PEP 562): this package is
loaded by every pytest run through its ``pytest11`` entry point, which should not cost a second of
asyncua imports to test runs that never touch OPC UA.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        node_id_text,
    )
    from forge_opcua.simulator.model import PlcModel
    from forge_opcua.simulator.server import PlcServer

__version__ = "0.1.0"

#: Every message type forge_opcua owns (its schemas are registered by the plugin).
MESSAGE_TYPES = ("opcua.data_change", "opcua.source_status", "opcua.queue_depth")

_LAZY = {  # the settings too: pydantic is not needed to list the plugins (forge --help)
    "forge_opcua.settings": ("BrowseSpec", "ClientSecurity", "MachineTiming", "NodeSpec", "PlcSimulatorParams",
                             "ServerSecurity", "SourceParams", "check_node_id", "node_id_text"),
    "forge_opcua.client.convert": ("DATA_CHANGE", "Tag", "json_value", "payload_of", "quality_of"),
    "forge_opcua.client.nodes": ("NodeError", "resolve_node_id"),
    "forge_opcua.components.plc_simulator": ("PlcSimulator",),
    "forge_opcua.components.source": ("QUEUE_DEPTH", "SOURCE_STATUS", "OpcUaSource", "SourceError"),
    "forge_opcua.security": ("CertificateTrust", "SecurityError"),
    "forge_opcua.simulator.model": ("PlcModel",),
    "forge_opcua.simulator.server": ("PlcServer",),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'forge_opcua' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["DATA_CHANGE", "MESSAGE_TYPES", "QUEUE_DEPTH", "SOURCE_STATUS", "BrowseSpec", "CertificateTrust",
           "ClientSecurity", "MachineTiming", "NodeError", "NodeSpec", "OpcUaSource", "PlcModel", "PlcServer",
           "PlcSimulator", "PlcSimulatorParams", "SecurityError", "ServerSecurity", "SourceError", "SourceParams",
           "Tag", "__version__", "check_node_id", "json_value", "node_id_text", "payload_of", "quality_of",
           "resolve_node_id"]
