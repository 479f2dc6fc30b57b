"""The sensor monitoring reference plant: simulated sensors with injected anomalies as Forge components
(processing, rules and storage come from forge-mms, Kafka and the MQTT bridge from forge-kafka), and the
plant's checks."""

__version__ = "0.1.0"
__all__ = ["__version__"]
