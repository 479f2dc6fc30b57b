"""The transport contract's partition API: the defaults every transport inherits (no partitions,
no lag, no events), what a component's subscription handle exposes, and PartitionListeners."""

from __future__ import annotations

import logging

import pytest

from forge_core.bus import MessageBus
from forge_core.messages.schemas import SchemaRegistry
from forge_core.transport import MemoryTransport, PartitionChange, PartitionListeners, Subscription
from tests.bus.bus_helpers import run


def test_memory_subscription_has_no_partitions_no_lag_and_never_calls_listeners():
    async def body(clock):
        transport = MemoryTransport("mem")
        await transport.connect()
        bus = MessageBus(schemas=SchemaRegistry(), clock=clock, transports={"mem": transport})
        changes: list[PartitionChange] = []
        for kwargs in ({}, {"group": "workers"}, {"batch": True}):
            sub = await bus.subscribe("plant/#", lambda _m: None, owner="c", **kwargs)
            # what ctx.subscribe hands the component is the transport's own subscription
            assert isinstance(sub, Subscription)
            sub.on_partitions_changed(changes.append)
            assert sub.assignment() == ()
            assert sub.lag() is None
            await sub.cancel()
        await transport.close()
        assert changes == []

    run(body)


def test_partition_change_is_a_frozen_value():
    change = PartitionChange("assigned", "sensor-processors", (("sensor-data", 0), ("sensor-data", 2)))
    assert change == PartitionChange("assigned", "sensor-processors", (("sensor-data", 0), ("sensor-data", 2)))
    with pytest.raises(AttributeError):
        change.kind = "revoked"  # type: ignore[misc]


class _Sub(Subscription):
    pattern = "sensor-data"
    group = "sensor-processors"

    async def cancel(self) -> None:
        return None


def test_listeners_are_called_in_order_and_one_that_raises_is_logged_with_pattern_and_group(caplog):
    listeners = PartitionListeners(_Sub())
    seen: list[str] = []

    def broken(change: PartitionChange) -> None:
        raise RuntimeError("listener bug")

    listeners.add(lambda change: seen.append(f"first {change.kind}"))
    listeners.add(broken)
    listeners.add(lambda change: seen.append(f"last {change.kind}"))
    change = PartitionChange("revoked", "plant.sensor-processors", (("sensor-data", 1),))
    with caplog.at_level(logging.ERROR, logger="forge.transport"):
        listeners.notify(change)
    assert seen == ["first revoked", "last revoked"]
    [record] = caplog.records
    text = record.getMessage()
    assert "broken" in text and "'sensor-data'" in text and "plant.sensor-processors" in text and "revoked" in text
    assert record.exc_info is not None and "listener bug" in str(record.exc_info[1])
    assert len(listeners) == 3
    listeners.clear()
    assert len(listeners) == 0


def test_a_listener_must_be_callable():
    with pytest.raises(TypeError, match=r"sensor-data.*callable"):
        PartitionListeners(_Sub()).add("not a function")  # type: ignore[arg-type]
