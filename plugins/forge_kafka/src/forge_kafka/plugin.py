"""The hooks of the ``kafka`` plugin; declared in pyproject.toml under ``[project.entry-points.forge]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core import hookimpl

from forge_kafka.components.bridge import Bridge
from forge_kafka.settings import KafkaSettings
from forge_kafka.transport import KafkaTransport

if TYPE_CHECKING:
    from forge_core.plugin import ComponentRegistry, TransportRegistry
    from forge_core.transport import TransportContext


def _kafka_factory(name: str, settings: KafkaSettings, context: TransportContext) -> KafkaTransport:
    # The plant name prefixes consumer group ids, so two plants on one cluster never share a group.
    return KafkaTransport(name, settings, plant=context.plant)


@hookimpl
def forge_register_transports(registry: TransportRegistry) -> None:
    registry.add("kafka", _kafka_factory, settings=KafkaSettings,
                 description="Kafka via confluent-kafka: consumer groups, commit after handling, dead-letter topics")


@hookimpl
def forge_register_components(registry: ComponentRegistry) -> None:
    registry.add("kafka.bridge", Bridge, description="forward MQTT topics to Kafka and Kafka types to MQTT topics")
