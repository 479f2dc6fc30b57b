"""Shared by the message bus tests (test_message_bus.py, test_batches.py, test_tracing.py,
test_memory_fast_path.py): a bus on memory transports with a test.reading schema, a virtual-clock runner,
and settle (wait until every transport has drained)."""

from __future__ import annotations

from forge_core.bus import MessageBus
from forge_core.clock import VirtualClock
from forge_core.messages.schemas import SchemaRegistry
from forge_core.transport.memory import MemoryTransport

READING = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["value"],
           "properties": {"value": {"type": "number"}}, "additionalProperties": False}


def make_bus(clock, *, telemetry=None, bindings=(), transports=("bus",), trace=None) -> MessageBus:
    schemas = SchemaRegistry()
    schemas.add("test.reading", READING)
    made = {name: MemoryTransport(name) for name in transports}
    return MessageBus(schemas=schemas, clock=clock, transports=made, bindings=bindings, telemetry=telemetry,
                      trace=trace)


def run(body):
    clock = VirtualClock()
    try:
        return clock.run(body(clock))
    finally:
        clock.close()


async def settle(bus: MessageBus) -> None:
    for transport in bus.transports.values():
        await transport.drained()
