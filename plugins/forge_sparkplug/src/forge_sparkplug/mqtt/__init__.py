"""The MQTT client of a Sparkplug component (paho, its Will the component's)."""

from forge_sparkplug.mqtt.client import Handover, Received, SparkplugClient, Will

__all__ = ["Handover", "Received", "SparkplugClient", "Will"]
