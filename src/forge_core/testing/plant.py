"""``TestPlant``: run a plant, or a few components, on the in-memory bus under virtual time.

Synchronous on purpose: a test calls ``advance(5)`` and five seconds of plant time pass at
once, deterministically, with no event loop in the test itself::

    with TestPlant("examples/bakery", seed=1) as plant:
        plant.advance(5)
        readings = plant.sent(type="bakery.reading")
        assert len(readings) == 5
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson

from forge_core.clock import VirtualClock
from forge_core.components import Component
from forge_core.errors import ForgeError
from forge_core.manifest import Manifest
from forge_core.messages.deadletter import DeadLetter
from forge_core.messages.envelope import Envelope, RawMessage
from forge_core.plant import load_plant
from forge_core.plugins import Plugins, get_plugin_manager
from forge_core.runtime.runtime import Runtime
from forge_core.runtime.summary import RunSummary
from forge_core.transport.base import Transport
from forge_core.transport.topics import matches

T = TypeVar("T")


class TestPlant:
    """A plant under test. Use as a context manager, or call ``start()``/``stop()``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        plant: str | Path | Manifest,
        *,
        profile: str | None = None,
        seed: int = 0,
        plugins: Plugins | Iterable[tuple[str, object]] | None = None,
        env: Mapping[str, str] | None = None,
        only: Iterable[str] | None = None,
        record_trace: bool = True,
    ) -> None:
        manager = plugins if isinstance(plugins, Plugins) else get_plugin_manager(extra=list(plugins or ()))
        if isinstance(plant, Manifest):
            manager.collect()
            self.manifest = plant
            self.plugins = manager
        else:
            self.plugins, self.manifest = load_plant(plant, profile=profile, env=env or {}, plugins=manager)
        self.clock = VirtualClock()
        self.seed = seed
        self.runtime = Runtime(self.manifest, self.plugins, clock=self.clock, seed=seed, only=only,
                               serve_health=False, record_trace=record_trace, tap=self._observe)
        self.observed: list[Envelope] = []
        self._summary: RunSummary | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> TestPlant:
        if not self._started:
            self._started = True
            self._run(self._start())
        return self

    async def _start(self) -> None:
        await self.runtime.start()

    async def _observe(self, topic: str, message: Envelope | RawMessage) -> None:
        if isinstance(message, Envelope):  # a decoded one may still hold its time as text (a subclass)
            self.observed.append(message)

    def stop(self) -> RunSummary:
        if self._summary is None:
            if self._started:
                self._summary = self._run(self.runtime.stop())
            self.clock.close()
        assert self._summary is not None or not self._started
        return self._summary  # type: ignore[return-value]

    def __enter__(self) -> TestPlant:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, coro: Awaitable[T]) -> T:
        async def settle() -> T:
            result = await coro
            await self._drain()
            return result

        return self.clock.run(settle())

    async def _drain(self) -> None:
        for transport in self.runtime.transports.values():
            drained = getattr(transport, "drained", None)
            if drained is not None:
                await drained()

    # -- time ------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Seconds of plant time since the start."""
        return self.clock.elapsed

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of plant time pass, running everything due meanwhile."""
        if not self._started:
            self.start()
        self.clock.run_for(seconds)

    def run_until(self, condition: Callable[[], bool], *, timeout: float, step: float = 0.1) -> float:
        """Advance in ``step``s until ``condition()`` holds; return the plant time it took.

        Raises AssertionError (with what was seen) if it does not hold within ``timeout``.
        """
        start = self.now
        while not condition():
            if self.now - start >= timeout:
                raise AssertionError(f"condition not met within {timeout}s of plant time; "
                                     f"{len(self.observed)} messages seen, last: "
                                     f"{[(e.topic, e.type) for e in self.observed[-5:]]}")
            self.advance(step)
        return self.now - start

    # -- messages --------------------------------------------------------------------------
    def publish(self, topic: str, type_: str, payload: Any, *, source: str = "test", key: str | None = None,
                headers: dict[str, str] | None = None, transport: str | None = None) -> Envelope:
        """Publish through the bus (validated), then let the plant handle it."""
        bus = self._bus()
        return self._run(bus.publish(topic, type_, payload, source=source, key=key, headers=headers,
                                     transport=transport))

    def publish_raw(self, topic: str, body: bytes | dict[str, Any] | list[Any] | str, *,
                    headers: dict[str, str] | None = None, transport: str | None = None) -> None:
        """Inject bytes as a plain client would (no envelope); the bus decodes and validates them."""
        if isinstance(body, (dict, list)):
            data = orjson.dumps(body)
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        target = self.transport(transport)
        publish_raw = getattr(target, "publish_raw", None)
        if publish_raw is None:
            raise ForgeError(f"transport {target.name!r} cannot inject raw messages")
        self._run(publish_raw(topic, RawMessage(data, dict(headers or {}))))

    def sent(self, pattern: str = "#", *, type: str | None = None, source: str | None = None) -> list[Envelope]:
        """Every message seen on the plant's transports, oldest first, filtered."""
        return [e for e in self.observed
                if matches(pattern, e.topic) and (type is None or e.type == type)
                and (source is None or e.source == source)]

    def last(self, type: str) -> Envelope:
        found = self.sent(type=type)
        if not found:
            seen = sorted({e.type for e in self.observed})
            raise AssertionError(f"no {type!r} message was sent; seen types: {seen}")
        return found[-1]

    def expect(self, type: str, *, within: float, where: Callable[[Envelope], bool] | None = None,
               after: int | None = None) -> Envelope:
        """Advance until a matching ``type`` message appears (counting from now); return it."""
        first = len(self.observed) if after is None else after

        def found() -> Envelope | None:
            for env in self.observed[first:]:
                if env.type == type and (where is None or where(env)):
                    return env
            return None

        self.run_until(lambda: found() is not None, timeout=within)
        result = found()
        assert result is not None
        return result

    def clear(self) -> None:
        self.observed.clear()

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return list(self.runtime.dead_letters.recent)

    # -- parts -----------------------------------------------------------------------------
    def _bus(self) -> Any:
        if not self._started:
            self.start()
        assert self.runtime.bus is not None
        return self.runtime.bus

    def transport(self, name: str | None = None) -> Transport:
        if not self._started:
            self.start()
        return self._bus().transport(name)

    def component(self, name: str) -> Component:
        """The live instance of component ``name`` (instance name for replicas: ``name-0``)."""
        supervisor = self.runtime.supervisors.get(name)
        if supervisor is None or supervisor.instance is None:
            raise KeyError(f"no running component {name!r}; running: "
                           f"{[n for n, s in self.runtime.supervisors.items() if s.instance is not None]}")
        return supervisor.instance

    def kill(self, name: str) -> None:
        """Kill a component instance as SIGKILL would (no stop, no lease release)."""
        self._run(self.runtime.kill(name))

    def revive(self, name: str) -> None:
        """Start a killed instance again; it is running when this returns."""
        async def revive() -> None:
            self.runtime.revive(name)
            await self.runtime.supervisors[name].started.wait()

        self._run(revive())

    def state(self, name: str) -> str:
        return self.runtime.supervisors[name].state

    @property
    def summary(self) -> RunSummary:
        return self._summary if self._summary is not None else self.runtime.summary()


def run_async(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a fresh real-time loop (for conformance tests)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
