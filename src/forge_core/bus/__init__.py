"""The message bus: the one edge where messages enter and leave a plant process.

Outgoing: ``publish`` builds the envelope (id, time, source, trace context), validates the
payload against its type's schema and hands it to the transport. Incoming: bytes from network
transports are decoded (CloudEvents binary mode or a plain JSON body typed by the manifest's
bindings) and validated before any handler sees them. Whatever fails goes to the dead-letter
channel with the reason; a handler that raises sends its message there too.

:mod:`.message_bus` holds the bus and its sending half, :mod:`.delivery` the receiving half,
:mod:`.stats` what it counts and records.
"""

from forge_core.bus.delivery import BatchHandler, Handler
from forge_core.bus.message_bus import MessageBus
from forge_core.bus.stats import BusStats, Route, Tally, TraceRecorder, TypeSlot

__all__ = ["BatchHandler", "BusStats", "Handler", "MessageBus", "Route", "Tally", "TraceRecorder", "TypeSlot"]
