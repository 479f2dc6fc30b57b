"""A subscription's cancel waits for the handler call under way (bounded by ``cancel_timeout``), so
the runtime's end of a component's batch subscriptions before its ``stop()`` holds on MQTT: no
handler of theirs is still running when ``stop()`` begins. At least once is kept: a message whose
handler has not returned is not acknowledged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from forge_core import Envelope, MessageBus, RealClock
from forge_core.components.context import ComponentContext
from forge_core.plugin import SchemaRegistry

from forge_mqtt.testing import MosquittoServer

COUNT = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def test_cancel_returns_after_the_slow_batch_handler_under_way(mosquitto_server: MosquittoServer,
                                                               tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "cancel-slow", content_mode="binary")
        await transport.connect()
        started = asyncio.Event()
        calls: list[str] = []

        async def slow(topic: str, messages: list[Any]) -> None:
            calls.append("begin")
            started.set()
            await asyncio.sleep(0.5)
            calls.append("end")

        sub = await transport.subscribe_batch("slow/#", slow)
        await asyncio.sleep(0.05)
        await transport.publish("slow/1", kit.envelope("one"))
        await asyncio.wait_for(started.wait(), 5)
        await sub.cancel()
        assert calls == ["begin", "end"]  # returned only after the handler did
        await transport.publish("slow/2", kit.envelope("two"))
        await asyncio.sleep(0.3)
        assert calls == ["begin", "end"]  # nothing more after cancel
        assert transport.health().stats["delivered"] == 1
        await transport.close()

    asyncio.run(body())


def test_cancel_of_a_hanging_handler_returns_after_the_bound_and_the_message_stays_unacknowledged(
        broker: MosquittoServer, tmp_path: Path, kit: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        settings = {"client_id": "test-cancel-hang", "session_expiry": 300, "cancel_timeout": 0.3,
                    "content_mode": "binary"}
        transport = kit.make_transport(broker, tmp_path, "cancel-hang", **settings)
        await transport.connect()
        started = asyncio.Event()

        async def hangs(topic: str, message: Any) -> None:
            started.set()
            await asyncio.Event().wait()  # never returns

        sub = await transport.subscribe("hang/#", hangs, owner="stuck")
        await asyncio.sleep(0.05)
        await transport.publish("hang/1", kit.envelope("kept"))
        await asyncio.wait_for(started.wait(), 5)
        transport.detach()  # the process is stopping: the session keeps the subscription
        with caplog.at_level(logging.ERROR, logger="forge.transport.mqtt"):
            await asyncio.wait_for(sub.cancel(), 5)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("'hang/#'" in m and "stuck" in m and "cancel_timeout" in m for m in errors), errors
        await transport.close()

        # the next life of the client id gets the message again: it was never acknowledged
        again = kit.make_transport(broker, tmp_path, "cancel-hang-2", **settings)
        got = kit.Collector()
        await again.connect()
        await again.subscribe("hang/#", got)
        await got.wait_for(1)
        assert got.payloads == ["kept"]
        await again.close()

    asyncio.run(body())


def test_a_handler_that_raises_after_cancel_is_dead_lettered_not_acknowledged_silently(
        mosquitto_server: MosquittoServer, tmp_path: Path, kit: Any) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "cancel-raise", max_redeliveries=3,
                                       content_mode="binary")
        given_up: list[tuple[str, BaseException]] = []
        transport.on_undeliverable = lambda topic, raw, exc: given_up.append((topic, exc))
        await transport.connect()
        started = asyncio.Event()
        calls: list[str] = []

        async def fails_late(topic: str, message: Any) -> None:
            calls.append(topic)
            started.set()
            await asyncio.sleep(0.3)
            raise ValueError("cannot handle")

        sub = await transport.subscribe("late/#", fails_late)
        await asyncio.sleep(0.05)
        await transport.publish("late/1", kit.envelope("x"))
        await asyncio.wait_for(started.wait(), 5)
        await sub.cancel()
        assert calls == ["late/1"]  # no redelivery once cancelled
        assert [(t, str(e)) for t, e in given_up] == [("late/1", "cannot handle")]
        await transport.close()

    asyncio.run(body())


def test_cancel_from_inside_its_own_handler_does_not_wait(mosquitto_server: MosquittoServer,
                                                          tmp_path: Path, kit: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        transport = kit.make_transport(mosquitto_server, tmp_path, "cancel-inside", cancel_timeout=5.0,
                                       content_mode="binary")
        await transport.connect()
        done = asyncio.Event()
        subs: list[Any] = []

        async def cancels_itself(topic: str, message: Any) -> None:
            await subs[0].cancel()
            done.set()

        subs.append(await transport.subscribe("self/#", cancels_itself))
        await asyncio.sleep(0.05)
        with caplog.at_level(logging.ERROR, logger="forge.transport.mqtt"):
            await transport.publish("self/1", kit.envelope("x"))
            await asyncio.wait_for(done.wait(), 2)  # within the bound: it did not wait for itself
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        await transport.close()

    asyncio.run(body())


def test_a_components_batch_handler_has_returned_when_its_stop_begins(mosquitto_server: MosquittoServer,
                                                                     tmp_path: Path, kit: Any) -> None:
    """Through the bus and a component's context, as the supervisor ends a component: its batch
    subscriptions are ended (``_end_batches``) before ``stop()``; on MQTT the slow batch handler's call
    has returned by then, and the message was acknowledged (delivered)."""
    async def body() -> None:
        sender = kit.make_transport(mosquitto_server, tmp_path, "stop-out")
        receiver = kit.make_transport(mosquitto_server, tmp_path, "stop-in")
        await sender.connect()
        await receiver.connect()
        schemas = SchemaRegistry()
        schemas.add("test.count", COUNT)
        bus = MessageBus(schemas=schemas, clock=RealClock(), transports={"out": sender, "in": receiver})
        ctx = ComponentContext(name="collector", component="collector", replica=0, replicas=1, params=None,
                               bus=bus, clock=RealClock(), transport="in", seed=1)
        log: list[Any] = []
        started = asyncio.Event()

        async def collect(envelopes: list[Envelope]) -> None:
            log.append(("begin", [e.payload["n"] for e in envelopes]))
            started.set()
            await asyncio.sleep(0.5)
            log.append("end")

        await ctx.subscribe("counts/#", collect, batch=True)
        await asyncio.sleep(0.05)
        await bus.publish("counts/a", "test.count", {"n": 1}, source="test", transport="out")
        await asyncio.wait_for(started.wait(), 5)
        await ctx._end_batches()
        log.append("stop")  # what the supervisor does next: the component's stop()
        assert log == [("begin", [1]), "end", "stop"]
        assert receiver.health().stats["delivered"] == 1
        await ctx._release()
        await sender.close()
        await receiver.close()

    asyncio.run(body())
