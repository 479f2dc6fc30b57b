"""Forge core: messages, transports, tactics, hook registry, manifest and runtime.

Plugins import what they need from here::

    from forge_core import Component, hookimpl, subscribe
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports
from forge_core.checks import Check
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
from forge_core.messages.envelope import Envelope, IdGenerator, RawMessage, format_time, parse_time

if TYPE_CHECKING:
    from forge_core.bus import MessageBus
    from forge_core.clock import Clock, RealClock, VirtualClock
    from forge_core.components import Component, ComponentContext, PeriodicTimer, epoch_of, subscribe
    from forge_core.messages import deadletter as dead_letters
    from forge_core.messages.deadletter import DeadLetter
    from forge_core.settings import Settings

# Imported on first use, so `import forge_core` (and `forge --version`) loads no asyncio, pydantic, jsonschema,
# SQLAlchemy or Alembic: the clocks, bus, components and settings pull those in (docs/performance.md, start-up).
__getattr__, __dir__ = lazy_exports(__name__, {
    "MessageBus": "forge_core.bus:MessageBus",
    "Clock": "forge_core.clock:Clock",
    "RealClock": "forge_core.clock:RealClock",
    "VirtualClock": "forge_core.clock:VirtualClock",
    "Component": "forge_core.components:Component",
    "ComponentContext": "forge_core.components:ComponentContext",
    "PeriodicTimer": "forge_core.components:PeriodicTimer",
    "epoch_of": "forge_core.components:epoch_of",
    "subscribe": "forge_core.components:subscribe",
    "dead_letters": "forge_core.messages.deadletter",
    "DeadLetter": "forge_core.messages.deadletter:DeadLetter",
    "Settings": "forge_core.settings:Settings",
})

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
    "PeriodicTimer",
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
