"""forge-mqtt: the MQTT transport for Forge (paho-mqtt 2.x).

``MqttTransport`` keeps the core transport contract over a real broker; ``DeathWatch`` tells a
current death certificate from a stale one; ``MqttSettings`` is the typed manifest section.
"""

from forge_mqtt.settings import MqttSettings
from forge_mqtt.transport import BIRTH_TOPIC, DEATH_TOPIC, DeathWatch, MqttRefused, MqttTransport, factory

__version__ = "0.1.0"

__all__ = [
    "BIRTH_TOPIC",
    "DEATH_TOPIC",
    "DeathWatch",
    "MqttRefused",
    "MqttSettings",
    "MqttTransport",
    "__version__",
    "factory",
]
