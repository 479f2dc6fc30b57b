"""``oee_line.oee``: OEE per machine and for the line over the current shift, from the stored data.

Every ``interval`` it reads each machine's state changes and counters of the shift so far
(``oee_line.storage.window.window_inputs``: on PostgreSQL the counters reduced in SQL), computes its
figures and six big losses (``oee_line.oee.machine_window``), combines the line (machines weighted by planned time) and
publishes ``oee_line.oee`` for each; the newest figures are the component's report (live view).
"""

from __future__ import annotations

import asyncio
from typing import Any

from forge_core import Component, Flow
from oee_line.oee import LossSettings, MachineWindow, Shift, ShiftWindow, combine, machine_window, shift_windows
from oee_line.settings import OeeParams
from oee_line.storage.store import TimeSeriesStore
from oee_line.storage.window import window_inputs
from oee_line.storage.window_cache import CounterCache

__all__ = ["OeeCalculator", "compute_window"]


def compute_window(store: TimeSeriesStore, params: OeeParams, window: ShiftWindow,
                   cache: CounterCache | None = None) -> dict[str, MachineWindow]:
    """Each machine's figures over ``window`` from storage (synchronous: run it in a thread). ``cache``: the
    counters reduced by the previous call, on SQLite (``oee_line.storage.window_cache``)."""
    settings = LossSettings(params.small_stop_threshold, params.startup_window)
    machines = params.machines or store.machines()
    inputs = window_inputs(store, machines, window.start, window.end, params.ideal_cycle_time, cache)
    return {machine: machine_window(i.states, i.counters, i.ideal_cycle_time, window.start, window.end,
                                    settings=settings, machine=machine) for machine, i in inputs.items()}


def message(params: OeeParams, scope: str, id_: str, window: ShiftWindow, w: MachineWindow | None,
            figures: Any, losses: dict[str, float | int], no_data: float) -> dict[str, Any]:
    return {"line": params.line, "scope": scope, "id": id_, "shift": window.key, "window_start": window.start,
            "window_end": window.end, "availability": figures.availability, "performance": figures.performance,
            "quality": figures.quality, "oee": figures.oee, "no_data_time": no_data,
            "figures": {k: v for k, v in figures.as_dict().items()
                        if k not in ("availability", "performance", "quality", "oee")}, "losses": losses}


class OeeCalculator(Component):
    Params = OeeParams
    params: OeeParams

    @classmethod
    def flows(cls, params: OeeParams) -> list[Flow]:
        """oee_line.oee on topic, {line} filled ({scope} and {id} vary per message), keyed by the id."""
        topic = params.topic.replace("{line}", params.line)
        return [*super().flows(params), Flow("send", topic, ("oee_line.oee",), key="id", origin="topic")]

    async def start(self) -> None:
        self.store = TimeSeriesStore(self.ctx.storage)
        self.shifts = [Shift.parse(s.name, s.start, s.hours) for s in self.params.shifts]
        self.latest: dict[str, dict[str, Any]] = {}
        self.counters = CounterCache()  # the shift so far: only what is new is reduced at each publication
        self.ctx.every(self.params.interval, self._tick, name="oee")

    async def _tick(self) -> None:
        await self.publish_now()

    def current_window(self, now: float) -> ShiftWindow | None:
        windows = [w for w in shift_windows(self.shifts, now - 86_400, now + 1e-9) if w.end >= now]
        return windows[-1] if windows else None

    async def publish_now(self, window: ShiftWindow | None = None) -> list[dict[str, Any]]:
        window = window or self.current_window(self.ctx.clock.time())
        if window is None:  # between shifts: nothing planned
            return []
        machines = (await asyncio.to_thread(compute_window, self.store, self.params, window, self.counters)
                    if not getattr(self.ctx.clock, "is_virtual", False) else  # no threads under virtual time
                    compute_window(self.store, self.params, window, self.counters))
        out = []
        for machine, w in sorted(machines.items()):
            out.append(message(self.params, "machine", machine, window, w, w.figures, w.losses.as_dict(),
                               w.no_data_time))
        line_losses: dict[str, float | int] = {}
        for w in machines.values():
            for k, v in w.losses.as_dict().items():
                line_losses[k] = line_losses.get(k, 0) + v
        out.append(message(self.params, "line", self.params.line, window, None,
                           combine(w.figures for w in machines.values()), line_losses,
                           sum(w.no_data_time for w in machines.values())))
        for body in out:
            topic = self.params.topic.format(line=self.params.line, scope=body["scope"], id=body["id"])
            await self.ctx.publish(topic, "oee_line.oee", body, key=body["id"])
            self.latest[f"{body['scope']}:{body['id']}"] = body
        return out

    def report(self) -> dict[str, Any]:
        return {key: {"shift": b["shift"], "oee": round(b["oee"], 4), "availability": round(b["availability"], 4),
                      "performance": round(b["performance"], 4), "quality": round(b["quality"], 4)}
                for key, b in sorted(self.latest.items())}
