"""The plugin registers the mqtt transport with its settings model, and the certificate schemas."""

from __future__ import annotations

from forge_core.plugin import get_plugin_manager

from forge_mqtt import factory

READING = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["machineId", "value"],
    "properties": {"machineId": {"type": "integer"}, "value": {"type": "number"}, "title": {"type": "string"}},
}

def test_plugin_registers_the_transport_and_certificate_schemas() -> None:
    plugins = get_plugin_manager()
    plugins.collect()
    entry = plugins.transports.get("mqtt")
    assert entry.value is factory
    assert entry.schema is not None and entry.schema["properties"]["max_inflight"]["default"] == 1000
    assert "forge.death" in plugins.schemas and "forge.birth" in plugins.schemas
