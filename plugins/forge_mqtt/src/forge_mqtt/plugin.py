"""The hooks of the ``mqtt`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import SchemaRegistry, TransportRegistry

@hookimpl
def forge_register_transports(registry: TransportRegistry) -> None:
    registry.add("mqtt", "forge_mqtt.transport:factory", settings="forge_mqtt.settings:MqttSettings",
                 description="MQTT 5/3.1.1 over paho-mqtt: QoS 0/1, reconnect, death certificates, outbox, TLS")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    # forge.birth / forge.death (the certificates this transport sends) are core schemas; this plugin's
    # schemas/ holds only types the core does not have (none today), never a second registration.
    for path in sorted((Path(__file__).parent / "schemas").glob("*.json")):
        type_ = path.name[: -len(".json")]
        if type_ not in registry:
            registry.add(type_, path)
