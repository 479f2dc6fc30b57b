"""The MQTT client of a Sparkplug component (paho, its Will the component's)."""

from forge_sparkplug.mqtt.client import Received, SparkplugClient, Will

__all__ = ["Received", "SparkplugClient", "Will"]
