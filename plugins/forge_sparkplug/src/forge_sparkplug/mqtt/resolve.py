"""The broker settings a Sparkplug component connects with: its ``mqtt`` param, inline or a transport's."""

from __future__ import annotations

from typing import Any

from forge_core import ComponentContext, ForgeError
from forge_mqtt import MqttSettings

__all__ = ["broker_settings", "data_dir"]


def broker_settings(ctx: ComponentContext, mqtt: str | MqttSettings) -> MqttSettings:
    """``mqtt`` itself, or the settings of the declared mqtt transport it names."""
    if isinstance(mqtt, MqttSettings):
        return mqtt
    try:
        transport: Any = ctx.bus.transport(mqtt)
    except Exception as exc:
        raise ForgeError(f"component {ctx.name!r}: params.mqtt names transport {mqtt!r}: {exc}") from None
    settings = getattr(transport, "settings", None)
    if not isinstance(settings, MqttSettings):
        raise ForgeError(f"component {ctx.name!r}: params.mqtt names transport {mqtt!r}, which is of type "
                         f"{getattr(transport, 'type_name', type(transport).__name__)!r}, not mqtt; name an mqtt "
                         "transport or write the broker settings inline")
    return settings


def data_dir(ctx: ComponentContext) -> Any:
    """The process's data directory (outboxes, sequence numbers)."""
    from pathlib import Path

    try:
        return ctx.tactics.services.data_dir
    except RuntimeError:
        return Path(".forge")
