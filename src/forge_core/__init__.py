"""Forge core: messages, transports, tactics, hook registry, manifest and runtime.

Plugins import what they need from here::

    from forge_core import Component, hookimpl, subscribe
"""

from forge_core.bus import MessageBus
from forge_core.clock import Clock, RealClock, VirtualClock
from forge_core.components import Component, ComponentContext, subscribe
from forge_core.errors import (
    ForgeError,
    ManifestError,
    ManifestProblem,
    MessageRejected,
    PluginError,
    SettingsError,
    TransportNotReady,
)
from forge_core.hookimpl import hookimpl
from forge_core.messages.envelope import Envelope, RawMessage
from forge_core.settings import Settings
from forge_core.transport.base import DeliveryGuarantee, Health, Subscription, Transport

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "Component",
    "ComponentContext",
    "DeliveryGuarantee",
    "Envelope",
    "ForgeError",
    "Health",
    "ManifestError",
    "ManifestProblem",
    "MessageBus",
    "MessageRejected",
    "PluginError",
    "RawMessage",
    "RealClock",
    "Settings",
    "SettingsError",
    "Subscription",
    "Transport",
    "TransportNotReady",
    "VirtualClock",
    "__version__",
    "hookimpl",
    "subscribe",
]
