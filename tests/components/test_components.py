"""The Component contract: runtime hooks cannot be shadowed by accident, ``publishes`` is a tuple, an
invalid publish is the caller's error, decorated handlers run only once start() has returned."""

from __future__ import annotations

import pytest

from forge_core.testing import TestPlant

# -- runtime hooks cannot be shadowed by accident; an invalid publish is the caller's error (issue 11 §7) --

@pytest.mark.parametrize("name,source,says", [
    ("report", "async def report(self):\n        return {}", "is `async def`"),
    ("checks", "async def checks(self):\n        return []", "is `async def`"),
    ("health", "def health(self, verbose):\n        return {}", "required arguments (verbose)"),
    ("stop", "def stop(self):\n        pass", "is a plain `def`"),
    ("report", "report = {'sent': 0}", "attribute, not a method"),
])
def test_a_runtime_hook_overridden_with_the_wrong_shape_is_refused_at_class_definition(
        name: str, source: str, says: str) -> None:
    from forge_core import Component

    namespace: dict[str, object] = {"Component": Component}
    with pytest.raises(TypeError) as excinfo:
        exec(f"class Bakery(Component):\n    {source}\n", namespace)
    message = str(excinfo.value)
    assert f"Bakery.{name}" in message and says in message and "another name" in message


def test_hooks_overridden_with_the_base_signature_are_fine() -> None:
    from forge_core import Component

    class Fine(Component):
        publishes = ("test.order",)

        async def start(self) -> None: ...

        def report(self) -> dict[str, int]:
            return {"n": 1}

        def checks(self) -> list:  # type: ignore[type-arg]
            return []

        def health(self, detail: bool = False) -> dict[str, bool]:
            return {"ok": True}

    assert Fine.publishes == ("test.order",)


def test_publishes_must_be_a_tuple() -> None:
    from forge_core import Component

    with pytest.raises(TypeError, match=r"publishes = \('test.order',\)"):
        type("Bad", (Component,), {"publishes": "test.order"})


INVALID_PUBLISH_PLUGIN = '''
from forge_core import Component, hookimpl
from forge_core.errors import MessageRejected


class Sender(Component):
    async def start(self):
        self.refused = []
        self.ctx.every(1.0, self.tick)

    async def tick(self):
        try:
            await self.ctx.publish("line/order", "test.order", {"n": "not a number"})
        except MessageRejected as exc:
            self.refused.append(str(exc))


@hookimpl
def forge_register_components(registry):
    registry.add("test.sender", Sender)


@hookimpl
def forge_register_schemas(registry):
    registry.add("test.order", {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}})
'''


def test_an_invalid_publish_is_dead_lettered_with_its_topic_and_transport_and_raised_to_the_caller(plant_dir):
    manifest = """
version: 1
plant: {name: line}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  sender: {type: test.sender}
storage: {migrate_on_start: false}
"""
    with TestPlant(plant_dir(manifest, plugin=INVALID_PUBLISH_PLUGIN), seed=1) as plant:
        plant.advance(3.5)
        sender = plant.component("sender")
        assert len(sender.refused) == 3 and "'line/order'" in sender.refused[0]
        letters = [letter for letter in plant.dead_letters if letter.reason == "invalid"]
        assert len(letters) == 3
        assert {(letter.topic, letter.transport, letter.component) for letter in letters} == {
            ("line/order", "bus", "sender")}
        assert plant.state("sender") == "running" and plant.summary.restarts == {}


ORDERED_PLUGIN = '''
import asyncio
from forge_core import Component, hookimpl, subscribe


class Slow(Component):
    """Its start() takes a while and builds what its handler needs."""

    async def start(self):
        await asyncio.sleep(0.05)  # real time: messages keep arriving meanwhile
        self.seen = []

    @subscribe("plant/ticks", types=["test.reading"])
    def on_tick(self, envelope):
        self.seen.append(envelope.payload["value"])  # AttributeError if called before start() returned


class Ticker(Component):
    async def start(self):
        await self.tick()
        self.ctx.every(0.1, self.tick)

    async def tick(self):
        await self.ctx.publish("plant/ticks", "test.reading", {"machine": "t", "value": 1.0})


@hookimpl
def forge_register_components(registry):
    registry.add("test.slow", Slow)
    registry.add("test.ticker", Ticker)
'''


def test_decorated_handlers_run_only_once_start_has_returned(plant_dir):
    """Issue 11 drill finding: a command queued in a persistent session reached a machine's handler
    before its start() ran (AttributeError, a dead letter, the command lost) - and before start()
    gave the fence its plant key. Decorated handlers are now subscribed after start()."""
    manifest = """
version: 1
plant: {name: ordered}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  slow: {type: test.slow}
  ticker: {type: test.ticker}
storage: {migrate_on_start: false}
"""
    with TestPlant(plant_dir(manifest, plugin=ORDERED_PLUGIN)) as plant:
        plant.advance(1.0)
        assert [d.reason for d in plant.dead_letters] == []
        assert plant.component("slow").seen, "the handler never ran after start()"


def test_ctx_random_is_the_instance_s_seeded_stream_made_at_its_first_read() -> None:
    """Each life of an instance gets the stream ``Random(f"{seed}:{name}")`` gives, made when first read
    (not per life: a chaos day starts thousands); unseeded runs get an unseeded one; it can be replaced."""
    import random

    from forge_core import ComponentContext
    from forge_core.clock import VirtualClock

    def life(name: str, seed: int | None) -> ComponentContext:
        return ComponentContext(name=name, component="m", replica=0, replicas=1, params={}, bus=None,  # type: ignore[arg-type]
                                clock=VirtualClock(), transport=None, seed=seed)

    first, second, other = life("m-0", 7), life("m-0", 7), life("m-1", 7)
    assert first._random is None  # nothing seeded until read
    expected = random.Random("7:m-0")
    draws = [first.random.random() for _ in range(5)]
    assert draws == [expected.random() for _ in range(5)]
    assert first.random is first.random
    assert [second.random.random() for _ in range(5)] == draws  # a new life starts the stream again
    assert other.random.random() != draws[0]
    assert isinstance(life("m-0", None).random, random.Random)
    replaced = random.Random(1)
    first.random = replaced
    assert first.random is replaced


AT_END_PLUGIN = '''
from forge_core import Component, hookimpl


class Keeper(Component):
    """Registers three end-of-life calls per life; the middle one fails."""

    ends = []  # shared by every life: (life, what)

    async def start(self):
        self.life = len([e for e in Keeper.ends if e[1] == "first"]) + 1
        self.ctx.at_end(lambda: Keeper.ends.append((self.life, "first")), name="first")
        self.ctx.at_end(self.fail, name="failing")
        self.ctx.at_end(lambda: Keeper.ends.append((self.life, "last")), name="last")
        self.ctx.every(1.0, self.tick)

    def fail(self):
        Keeper.ends.append((self.life, "failing"))
        raise RuntimeError("the pool is gone")

    async def tick(self):
        if getattr(self, "crash", False):
            raise RuntimeError("crash")


@hookimpl
def forge_register_components(registry):
    registry.add("test.keeper", Keeper)
'''


def test_ctx_at_end_runs_once_a_life_whether_stopped_killed_or_crashed_last_first_despite_a_failure(
        plant_dir, caplog) -> None:
    manifest = """
version: 1
plant: {name: ends}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  keeper: {type: test.keeper}
storage: {migrate_on_start: false}
"""
    with caplog.at_level("ERROR"), TestPlant(plant_dir(manifest, plugin=AT_END_PLUGIN), seed=1) as plant:
        keeper = type(plant.component("keeper"))
        ends = keeper.ends
        plant.advance(2.0)
        assert ends == []
        plant.kill("keeper")  # no stop(): the calls still run
        assert ends == [(1, "last"), (1, "failing"), (1, "first")]
        plant.revive("keeper")
        plant.component("keeper").crash = True  # type: ignore[attr-defined]
        plant.advance(1.5)  # its next tick crashes it: the end of the second life
        assert ends[3:] == [(2, "last"), (2, "failing"), (2, "first")]
        plant.run_until(lambda: plant.state("keeper") == "running", timeout=60)  # restarted: a third life
    assert ends[6:] == [(3, "last"), (3, "failing"), (3, "first")]  # stopped with the plant
    assert caplog.text.count("failing failed at the end of its life") == 3
