"""``oee_line.historian``: what the Sparkplug host reads -> telemetry, events and rollups.

Every ``sparkplug.metrics`` (births and DATA, live or historical) of a device becomes samples of
that machine at the metrics' own timestamps; numeric and boolean values go to ``telemetry``, the
state metric to ``events``. A batch is one transaction (``TimeSeriesStore.write``), run in a worker
thread; samples already stored (a birth repeating the last values, a replay) are not stored again.

``commit_every`` > 0 (the chaos profile's simulated day): what arrives is kept and written together
every that many seconds of plant time, in arrival order, one transaction (and at stop); a write that
fails dead-letters every message it held, as a failed batch does. 0 (the default): each delivery at once.
What is held is already acknowledged, so a crash would lose it: under the real clock ``start`` refuses a
``commit_every`` above 0 (a clear error naming the setting), so it serves simulated runs only.

Under a virtual clock the writes share transactions (``virtual_commit_samples``, a
``forge_core.storage.CommitGroup``): each write runs at its call on one kept connection, committed every
that many samples, before any other checkout of the engine (the percentile refresh, the OEE
publication, the audit), at stop and at a kill, so a reader and a kill see what a commit per write gives.
The group's rollups are upserted once, just before each of its commits (``oee_line.storage.rollups_held``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from forge_core import Check, Component, DeadLetter, Envelope, Subscribes
from forge_core import dead_letters as dl
from forge_core.storage import CommitGroup
from oee_line.oee import StateChange
from oee_line.settings import HistorianParams
from oee_line.storage.store import Retention, Sample, TimeSeriesStore

__all__ = ["Historian", "quality_name"]

T = TypeVar("T")


_QUALITY = {192: "good", 0: "bad", None: "good"}  # made once: quality_name runs for every sample
#: Sample of a tuple of its five fields, as the named tuple's own ``_make`` makes it, with no Python call (its
#: ``__new__`` is one): the historian makes one for every sample
_sample = partial(tuple.__new__, Sample)


def quality_name(code: Any) -> str:
    """Sparkplug quality (192 GOOD, 500 STALE, 0 BAD) -> the telemetry column's good|uncertain|bad."""
    return _QUALITY.get(code, "uncertain")


class Historian(Component):
    Params = HistorianParams
    params: HistorianParams
    subscribes = (Subscribes("sparkplug.metrics", param="topics"),)

    async def start(self) -> None:
        virtual = getattr(self.ctx.clock, "is_virtual", False)
        if self.params.commit_every > 0 and not virtual:
            raise ValueError(
                f"oee_line.historian {self.name!r}: params.commit_every is {self.params.commit_every:g} s under "
                f"the real clock: what it holds is already acknowledged to the bus, so a crash would lose it. "
                f"commit_every is for simulated runs only (forge run --simulate); set it to 0 (the default) here")
        grouped = virtual and self.params.virtual_commit_samples > 0
        # grouped: the group's transaction upserts its rollups once, before it commits (storage.rollups_held)
        self.store = TimeSeriesStore(self.ctx.storage, hold_rollups=grouped)
        self.store.on_timescale()  # asked now: a connect inside a group's write would commit it mid-write
        self.group: CommitGroup | None = None
        if grouped:
            self.group = CommitGroup(self.ctx.storage, self.params.virtual_commit_samples,
                                     name=f"oee_line.historian {self.name!r}", before_commit=self.store.flush_rollups,
                                     logger=self.ctx.log)
            self.ctx.at_end(self.group.end, name="commit_group")
        self.stats = {"messages": 0, "samples": 0, "stored": 0, "states": 0, "skipped": 0, "errors": 0}
        self.fault: dict[str, int] = {}
        self.lock = asyncio.Lock()
        # a worker thread under the real clock; inline under virtual time (no threads: a seed replays the run)
        self.offload = not virtual
        #: held for the next commit (``commit_every`` > 0): the messages, their samples and state changes
        self.held: list[Envelope] = []
        self.held_samples: list[Sample] = []
        self.held_states: list[tuple[str, StateChange]] = []
        self._commit: asyncio.Task[None] | None = None
        for pattern in self.params.topics:
            await self.ctx.subscribe(pattern, self.on_metrics, types=["sparkplug.metrics"], batch=True)
        self.ctx.every(self.params.percentile_every, self._percentiles, name="percentiles")
        self.ctx.every(self.params.retention_every, self._retention, name="retention")

    def decode(self, body: dict[str, Any]) -> tuple[list[Sample], list[tuple[str, StateChange]]]:
        machine = body.get("device")
        if not machine:
            return [], []
        samples: list[Sample] = []
        states: list[tuple[str, StateChange]] = []
        fault_metric, state_metric = self.params.fault_metric, self.params.state_metric  # read once a message
        for metric in body.get("metrics", []):
            name, value, ts = metric.get("name"), metric.get("value"), metric.get("timestamp")
            if ts is None or value is None or name is None:
                self.stats["skipped"] += 1
                continue
            at = ts / 1000.0
            if name == fault_metric and isinstance(value, int):
                self.fault[machine] = value
            if name == state_metric and isinstance(value, str):
                states.append((machine, StateChange(at, value, self.fault.get(machine, 0) if value == "down" else 0)))
            elif isinstance(value, (bool, int, float)):
                quality = _QUALITY.get(metric.get("quality"), "uncertain")  # quality_name, inline (every sample)
                samples.append(_sample((machine, name, at, float(value), quality)))
            else:
                self.stats["skipped"] += 1
        return samples, states

    async def on_metrics(self, batch: list[Envelope]) -> None:
        self.stats["messages"] += len(batch)
        samples: list[Sample] = []
        states: list[tuple[str, StateChange]] = []
        for envelope in batch:
            more, changes = self.decode(envelope.payload)
            samples += more
            states += changes
        if not samples and not states:
            return
        if self.params.commit_every > 0:
            self.held += batch
            self.held_samples += samples
            self.held_states += states
            if self._commit is None:
                self._commit = self.ctx.spawn(self._commit_later(), name="commit")
            return
        await self._write(samples, states)

    async def _write(self, samples: list[Sample], states: list[tuple[str, StateChange]]) -> None:
        async with self.lock:  # one writer: rollup upserts of one bucket never race each other
            if self.group is not None:  # virtual time: inline, in the group's transaction
                stored = self.group.run(self.store.write_in, samples, states, units=len(samples))
            else:
                stored = await self._call(self.store.write, samples, states)
        self.stats["samples"] += len(samples)
        self.stats["stored"] += stored
        self.stats["states"] += len(states)

    async def _commit_later(self) -> None:
        await self.ctx.clock.sleep(self.params.commit_every)
        self._commit = None
        await self.commit()

    async def commit(self) -> None:
        """Write what is held in one transaction; if that fails, every message held is dead-lettered."""
        held, samples, states = self.held, self.held_samples, self.held_states
        self.held, self.held_samples, self.held_states = [], [], []
        if not held:
            return
        try:
            await self._write(samples, states)
        except Exception as exc:  # as the bus does with a failed batch: nothing held is lost
            self.stats["errors"] += len(held)
            self.ctx.log.error("historian: commit of %d messages failed, dead-lettered: %s", len(held), exc)
            now = self.ctx.clock.time()
            for envelope in held:
                self.ctx.bus.dead_letters.put(DeadLetter(
                    dl.HANDLER_ERROR, f"{type(exc).__name__}: {exc} (commit of {len(held)})", envelope.topic,
                    str(self.ctx.transport or ""), now, [], self.name, envelope))

    async def stop(self) -> None:
        if self._commit is not None:
            self._commit.cancel()
            self._commit = None
        await self.commit()
        if self.group is not None:
            self.group.close()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args) if self.offload else fn(*args)

    async def _percentiles(self) -> None:
        async with self.lock:
            await self._call(self.store.refresh_percentiles)

    async def _retention(self) -> None:
        r = self.params.retention
        async with self.lock:
            await self._call(self.store.apply_retention, self.ctx.clock.time(), Retention(
                r.telemetry_days, r.rollup_1m_days, r.rollup_5m_days, r.rollup_1h_days, r.events_days))

    def report(self) -> dict[str, Any]:
        return dict(self.stats)

    def checks(self) -> list[Check]:
        return [Check("every sample with a value and timestamp stored or already there",
                      self.stats["errors"] == 0, f"{self.stats['stored']} of {self.stats['samples']} new")]
