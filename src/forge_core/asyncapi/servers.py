"""AsyncAPI servers and their protocol details, from the manifest's transports.

Core imports no plugin, so a transport is described from its built settings object (what the
plugin's own declaration made of the manifest, defaults filled), read by attribute: MQTT's
``host``/``port``/``protocol``/``qos_for``, Kafka's ``bootstrap``/``group_template``/``topics``.
A transport type this module does not know is documented by its type name as protocol, without
bindings; an in-process one (``memory``) is no server at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forge_core.manifest.model import TransportSpec

#: Transport types that never leave the process: no server, no wire format.
IN_PROCESS = frozenset({"memory"})
MQTT_BINDING = "0.2.0"
KAFKA_BINDING = "0.5.0"


@dataclass
class Wire:
    """How one transport puts messages on the wire, for channels, operations and messages."""

    name: str
    type: str
    settings: Any
    #: ``mqtt``, ``kafka``, another protocol name, or None in process.
    protocol: str | None
    #: ``binary`` (attributes in headers) or ``structured`` (one CloudEvents JSON document).
    content_mode: str = "binary"
    #: MQTT 3.1.1: no user properties, the plain body alone.
    headers: bool = True

    def address(self, topic: str) -> str:
        """The topic as this transport's broker names it (Kafka: ``/`` becomes ``.``)."""
        return topic.replace("/", ".") if self.protocol == "kafka" else topic

    def get(self, name: str, default: Any = None) -> Any:
        if isinstance(self.settings, dict):
            return self.settings.get(name, default)
        return getattr(self.settings, name, default)


def wire_of(spec: TransportSpec, settings: Any) -> Wire:
    wire = Wire(spec.name, spec.type, settings, None if spec.type in IN_PROCESS else spec.type)
    if spec.type == "mqtt":
        # forge_mqtt's default: structured on MQTT 5, binary (the bare body) on 3.1.1
        v5 = str(wire.get("protocol", "5")) != "3.1.1"
        wire.content_mode = str(wire.get("content_mode") or ("structured" if v5 else "binary"))
        wire.headers = v5 or wire.content_mode == "structured"
    elif spec.type == "kafka":
        wire.content_mode = str(wire.get("content_mode", "structured"))
    return wire


def server_of(wire: Wire) -> dict[str, Any] | None:
    """The AsyncAPI Server Object of a transport; None for an in-process one."""
    if wire.protocol is None:
        return None
    described = f"Forge transport `{wire.name}` (type {wire.type})."
    if wire.type == "mqtt":
        tls = bool(wire.get("tls")) or bool(wire.get("ca_file")) or bool(wire.get("cert_file"))
        server: dict[str, Any] = {
            "host": f"{wire.get('host', 'localhost')}:{wire.get('port', 1883)}",
            "protocol": "secure-mqtt" if tls else "mqtt",
            "protocolVersion": str(wire.get("protocol", "5")),
            "description": f"{described} CloudEvents content mode {wire.content_mode}"
                           + ("" if wire.headers else " (MQTT 3.1.1: the plain JSON body, no attributes)") + ".",
        }
        binding: dict[str, Any] = {"bindingVersion": MQTT_BINDING}
        if wire.get("client_id"):
            binding["clientId"] = str(wire.get("client_id"))
        if wire.get("keepalive") is not None:
            binding["keepAlive"] = int(wire.get("keepalive"))
        expiry = wire.get("session_expiry")
        if expiry is not None:
            binding["sessionExpiryInterval"] = int(expiry)
            binding["cleanSession"] = int(expiry) == 0
        server["bindings"] = {"mqtt": binding}
        return server
    if wire.type == "kafka":
        bootstrap = [h.strip() for h in str(wire.get("bootstrap", "")).split(",") if h.strip()]
        security = str((wire.get("config") or {}).get("security.protocol", "PLAINTEXT")).upper()
        return {
            "host": bootstrap[0] if bootstrap else "localhost:9092",
            "protocol": "kafka-secure" if security != "PLAINTEXT" else "kafka",
            "description": f"{described} Bootstrap servers: {', '.join(bootstrap) or 'none'}; security.protocol "
                           f"{security}; CloudEvents content mode {wire.content_mode}.",
            "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING}},
        }
    host = wire.get("host") or wire.get("url") or wire.get("bootstrap") or "unknown"
    return {"host": str(host), "protocol": wire.type, "description": described}
