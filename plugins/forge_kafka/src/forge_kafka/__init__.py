"""forge-kafka: the Kafka transport and the MQTT<->Kafka bridge for Forge."""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
    from forge_kafka.components.bridge import Bridge
    from forge_kafka.settings import BridgeParams, KafkaSettings, TopicSpec
    from forge_kafka.transport import KafkaSubscription, KafkaTransport, pattern_to_kafka, to_forge, to_kafka

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Bridge": "forge_kafka.components.bridge:Bridge",
        "BridgeParams": "forge_kafka.settings:BridgeParams",
        "KafkaSettings": "forge_kafka.settings:KafkaSettings",
        "TopicSpec": "forge_kafka.settings:TopicSpec",
        "KafkaSubscription": "forge_kafka.transport:KafkaSubscription",
        "KafkaTransport": "forge_kafka.transport:KafkaTransport",
        "pattern_to_kafka": "forge_kafka.transport:pattern_to_kafka",
        "to_forge": "forge_kafka.transport:to_forge",
        "to_kafka": "forge_kafka.transport:to_kafka",
    },
)

__version__ = "0.1.0"

__all__ = [
    "Bridge",
    "BridgeParams",
    "KafkaSettings",
    "KafkaSubscription",
    "KafkaTransport",
    "TopicSpec",
    "pattern_to_kafka",
    "to_forge",
    "to_kafka",
]
