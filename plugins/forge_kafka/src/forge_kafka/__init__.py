"""forge-kafka: the Kafka transport and the MQTT<->Kafka bridge for Forge."""

from forge_kafka.components.bridge import Bridge
from forge_kafka.settings import BridgeParams, KafkaSettings, TopicSpec
from forge_kafka.transport import KafkaSubscription, KafkaTransport, pattern_to_kafka, to_forge, to_kafka

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
