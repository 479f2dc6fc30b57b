"""forge-mqtt: the MQTT transport for Forge (paho-mqtt 2.x).

``MqttTransport`` keeps the core transport contract over a real broker; ``DeathWatch`` tells a
current death certificate from a stale one; ``MqttSettings`` is the typed manifest section.
"""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
    from forge_mqtt.settings import MqttSettings
    from forge_mqtt.transport import BIRTH_TOPIC, DEATH_TOPIC, DeathWatch, MqttRefused, MqttTransport, factory
    from forge_mqtt.transport.client_setup import apply_credentials

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MqttSettings": "forge_mqtt.settings:MqttSettings",
        "BIRTH_TOPIC": "forge_mqtt.transport:BIRTH_TOPIC",
        "DEATH_TOPIC": "forge_mqtt.transport:DEATH_TOPIC",
        "DeathWatch": "forge_mqtt.transport:DeathWatch",
        "MqttRefused": "forge_mqtt.transport:MqttRefused",
        "MqttTransport": "forge_mqtt.transport:MqttTransport",
        "factory": "forge_mqtt.transport:factory",
        "apply_credentials": "forge_mqtt.transport.client_setup:apply_credentials",
    },
)

__version__ = "0.1.0"

__all__ = [
    "BIRTH_TOPIC",
    "DEATH_TOPIC",
    "DeathWatch",
    "MqttRefused",
    "MqttSettings",
    "MqttTransport",
    "__version__",
    "apply_credentials",
    "factory",
]
