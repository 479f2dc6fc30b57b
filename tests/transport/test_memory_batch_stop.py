"""The in-memory transport's batch subscriptions at their end: what waits in the ``batch_wait``
window is delivered at ``cancel()``, ``close()`` and a component's stop (before its ``stop()``),
at least once (a list that raises then is redelivered, then reported undeliverable); a kill drops it."""

from __future__ import annotations

import sys

from forge_core.clock import VirtualClock
from forge_core.messages.envelope import Envelope
from forge_core.testing import TestPlant
from forge_core.transport.memory import MemoryTransport
from tests.bus.bus_helpers import run


def env(n: int) -> Envelope:
    return Envelope(type="t", payload={"n": n}, source="s", id=str(n), key="k")


def numbers(batch: list) -> list[int]:
    return [m.payload["n"] for m in batch]


def test_cancel_delivers_what_waits_in_the_window_at_once_and_nothing_published_after():
    async def body(clock: VirtualClock) -> tuple[list[tuple[float, list[int]]], dict[str, int]]:
        transport = MemoryTransport(batch_wait=10.0)
        got: list[tuple[float, list[int]]] = []

        async def callback(topic: str, messages: list) -> None:
            await clock.sleep(0.5)  # a handler that takes its time: cancel waits for it
            got.append((clock.time() - start, numbers(messages)))

        sub = await transport.subscribe_batch("r", callback)
        start = clock.time()
        for n in range(3):
            await transport.publish("r", env(n))
            await clock.sleep(1.0)
        await sub.cancel()  # at 3 s, 7 s before the window would end
        await transport.publish("r", env(3))
        await clock.sleep(20.0)
        return got, transport.hub.stats

    got, stats = run(body)
    assert got == [(3.5, [0, 1, 2])]
    assert stats == {"published": 4, "delivered": 3, "redelivered": 0, "undeliverable": 0}


def test_a_list_that_raises_at_cancel_is_redelivered_then_reported_undeliverable_not_lost():
    async def body(clock: VirtualClock) -> tuple[list[list[int]], list[int], dict[str, int]]:
        transport = MemoryTransport(batch_wait=5.0, max_redeliveries=2)
        got: list[list[int]] = []
        reported: list[int] = []
        transport.on_undeliverable = lambda topic, message, exc: reported.append(message.payload["n"])

        async def callback(topic: str, messages: list) -> None:
            got.append(numbers(messages))
            raise RuntimeError("store closed")

        sub = await transport.subscribe_batch("r", callback)
        await transport.publish("r", env(0))
        await transport.publish("r", env(1))
        await clock.sleep(1.0)
        await sub.cancel()
        return got, reported, transport.hub.stats

    got, reported, stats = run(body)
    assert got == [[0, 1]] * 3
    assert reported == [0, 1]
    assert stats == {"published": 2, "delivered": 0, "redelivered": 4, "undeliverable": 2}


def test_close_delivers_what_waits_in_each_batch_window():
    async def body(clock: VirtualClock) -> list[tuple[str, list[int]]]:
        transport = MemoryTransport(batch_wait=60.0)
        got: list[tuple[str, list[int]]] = []

        def into(name: str):
            async def callback(topic: str, messages: list) -> None:
                got.append((name, numbers(messages)))
            return callback

        await transport.subscribe_batch("a", into("a"))
        await transport.subscribe_batch("b", into("b"))
        await transport.publish("a", env(0))
        await transport.publish("b", env(1))
        await transport.publish("a", env(2))
        await clock.sleep(1.0)
        await transport.close()
        return got

    got = run(body)
    assert sorted(got) == [("a", [0, 2]), ("b", [1])]


PLUGIN = '''
from forge_core import Component, hookimpl, subscribe

LOG = []


class Gateway(Component):
    async def start(self):
        self.round = 0
        self.ctx.every(1.0, self.tick)

    async def tick(self):
        self.round += 1
        await self.ctx.publish_batch("readings", "test.order", [{"n": self.round * 10 + i} for i in range(3)])


class Collector(Component):
    @subscribe("readings", batch=True)
    def on_readings(self, envelopes):
        LOG.append([e.payload["n"] for e in envelopes])

    async def stop(self):
        LOG.append("stopped")


@hookimpl
def forge_register_components(registry):
    registry.add("test.gateway", Gateway)
    registry.add("test.collector", Collector)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''

MANIFEST = """
version: 1
plant: {name: batch-stop}
local_plugins: [machines.py]
transports: {bus: {type: memory, settings: {batch_wait: 5}}}
components:
  gateway: {type: test.gateway}
  collector: {type: test.collector}
storage: {migrate_on_start: false}
"""


def _log(plant: TestPlant) -> list:
    """The plugin module's LOG (local plugins are loaded under a name of the loader's choosing)."""
    return sys.modules[type(plant.component("collector")).__module__].LOG  # type: ignore[no-any-return]


def test_a_components_batch_window_reaches_its_handler_before_its_stop(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        log = _log(plant)
        log.clear()
        plant.advance(3.5)  # readings at 1, 2 and 3 s, all in the window opened at 1 s
        assert log == []
    assert log == [[10, 11, 12, 20, 21, 22, 30, 31, 32], "stopped"]


def test_a_killed_component_is_handed_nothing_of_its_window(plant_dir):
    with TestPlant(plant_dir(MANIFEST, plugin=PLUGIN), seed=1) as plant:
        log = _log(plant)
        log.clear()
        plant.advance(2.5)
        plant.kill("collector")
        plant.advance(1.0)
        assert log == []


HANGING = PLUGIN.replace(
    '''    def on_readings(self, envelopes):
        LOG.append([e.payload["n"] for e in envelopes])''',
    '''    async def on_readings(self, envelopes):
        LOG.append([e.payload["n"] for e in envelopes])
        await __import__("asyncio").sleep(86400)  # a handler that does not return''')


def test_a_handler_that_never_returns_holds_the_stop_no_longer_than_the_flush_timeout(plant_dir, caplog):
    with TestPlant(plant_dir(MANIFEST, plugin=HANGING), seed=1) as plant:
        log = _log(plant)
        log.clear()
        plant.advance(3.5)
        assert log == []
    # the window was handed over (the handler started), the flush gave up after FLUSH_TIMEOUT, the stop ran
    assert log == [[10, 11, 12, 20, 21, 22, 30, 31, 32], "stopped"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("component collector" in m and "'readings'" in m and "30s" in m for m in errors), errors


PUBLISHING_STOP = PLUGIN.replace(
    '''    async def stop(self):
        LOG.append("stopped")''',
    '''    async def stop(self):
        LOG.append("stopping")
        await self.ctx.publish("readings", "test.order", {"n": 99})  # arrives while stop() runs
        await self.ctx.clock.sleep(10.0)  # longer than the batch_wait window
        LOG.append("stopped")''')


def test_no_batch_handler_call_begins_after_stop_has_begun(plant_dir):
    """The batch subscription is ended (routed nothing more, its window delivered) before ``stop()``:
    what is published while ``stop()`` runs no longer reaches the handler after it (it did on 5bc31f2)."""
    with TestPlant(plant_dir(MANIFEST, plugin=PUBLISHING_STOP), seed=1) as plant:
        log = _log(plant)
        log.clear()
        plant.advance(3.5)
        assert log == []
    assert log == [[10, 11, 12, 20, 21, 22, 30, 31, 32], "stopping", "stopped"]
