"""Forge core: messages, transports, tactics, hook registry, manifest and runtime.

Plugins import what they need from here::

    from forge_core import Component, hookimpl, subscribe
"""

from forge_core.bus import MessageBus
from forge_core.checks import Check
from forge_core.clock import Clock, RealClock, VirtualClock
from forge_core.components import Component, ComponentContext, epoch_of, subscribe
from forge_core.errors import (
    ForgeError,
    ManifestError,
    ManifestProblem,
    MessageRejected,
    PluginError,
    Redeliver,
    SettingsError,
    TransportClosed,
    TransportError,
    TransportNotReady,
    UnknownMessageType,
)
from forge_core.flows import Flow, Publishes, Subscribes
from forge_core.hookspecs import hookimpl
from forge_core.messages import deadletter as dead_letters
from forge_core.messages.deadletter import DeadLetter
from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage, format_time, parse_time
from forge_core.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Check",
    "Clock",
    "Component",
    "ComponentContext",
    "DeadLetter",
    "Envelope",
    "Flow",
    "ForgeError",
    "IdGenerator",
    "ManifestError",
    "ManifestProblem",
    "MessageBus",
    "MessageRejected",
    "PluginError",
    "Publishes",
    "RawMessage",
    "RealClock",
    "Redeliver",
    "Settings",
    "SettingsError",
    "Subscribes",
    "TransportClosed",
    "TransportError",
    "TransportNotReady",
    "UnknownMessageType",
    "VirtualClock",
    "__version__",
    "dead_letters",
    "epoch_of",
    "format_time",
    "hookimpl",
    "parse_time",
    "subscribe",
]
