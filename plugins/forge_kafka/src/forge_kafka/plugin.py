"""The hooks of the ``kafka`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from forge_core import hookimpl

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, SchemaRegistry, TransportRegistry

@hookimpl
def forge_register_transports(registry: TransportRegistry) -> None:
    registry.add("kafka", "forge_kafka.transport:kafka_factory", settings="forge_kafka.settings:KafkaSettings",
                 description="Kafka via confluent-kafka: consumer groups, commit after handling, dead-letter topics")


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("kafka.bridge", "forge_kafka.components.bridge:Bridge", description="forward MQTT topics to Kafka and Kafka types to MQTT topics")


@hookimpl
def forge_register_schemas(registry: SchemaRegistry) -> None:
    # The message types this plugin owns (``kafka.*``): none yet; the directory is registered so one
    # added there is known without touching this file.
    registry.add_directory(Path(__file__).parent / "schemas")
