"""Component types of forge_kafka."""

from forge_kafka.components.bridge import Bridge

__all__ = ["Bridge"]
