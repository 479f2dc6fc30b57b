"""``oee_line.sim_plc``: the simulated PLC's machines on the plant's clock, reported as ``opcua.source`` does.

``opcua.plc_simulator`` serves :class:`forge_opcua.PlcModel` over OPC UA (real sockets, real time);
under virtual time this component runs the same model and publishes each value change as the
``opcua.data_change`` the source would (tag ``M1/State``, the model's source timestamp), one per
change and event by event: every part and every transition, as a monitored item with a queue
delivers them. What it published is the ground truth the audit checks storage against.

A PLC restart (``restart(seconds)``, from ``oee_line.chaos``): every machine goes ``down`` with
``restart_fault_code`` (published before the PLC goes quiet), nothing is published while it is
away, and it comes back with every machine running and its counters at 0 (the OEE calculation
reads a counter that went down as a restart).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

from forge_opcua import DATA_CHANGE, PlcModel
from forge_opcua.simulator.model import STATES, Machine

from forge_core import Component, PeriodicTimer, Publishes
from oee_line.settings import SimPlcParams

__all__ = ["MachineTruth", "SimPlc", "plc"]

_PLCS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SimPlc]] = weakref.WeakKeyDictionary()
_DATATYPES = {"State": "String", "StateCode": "Int32", "FaultCode": "Int32", "GoodCount": "UInt32",
              "TotalCount": "UInt32", "IdealCycleTime": "Double"}
#: the metrics a change publishes, in this order: the fault code before the state (the state's event carries it)
_METRICS = ("FaultCode", "State", "StateCode", "GoodCount", "TotalCount", "IdealCycleTime")
_POSITIONS = range(len(_METRICS))
_UNSHOWN = object()  # equal to no value: the first of each metric is published


def plc(name: str) -> SimPlc | None:
    """The running ``oee_line.sim_plc`` ``name`` of this loop's plant."""
    return _PLCS.get(asyncio.get_running_loop(), {}).get(name)


@dataclass
class MachineTruth:
    """What one machine did, at the PLC's millisecond timestamps: states and parts (good or not)."""

    ideal_cycle_time: float
    states: list[tuple[int, str]] = field(default_factory=list)
    parts: list[tuple[int, bool]] = field(default_factory=list)


class SimPlc(Component):
    Params = SimPlcParams
    params: SimPlcParams
    publishes = (Publishes(DATA_CHANGE, param="topic", key="the tag"),)

    async def start(self) -> None:
        p = self.params
        # the first values go out a second after start, as an OPC UA client needs to connect and subscribe
        # (the gateway and edge node have subscribed to the bus by then)
        now = self.ctx.clock.time() + 1.0
        self.model = PlcModel(p.machines, p.timing, self.ctx.random, now, cycle_times=p.cycle_times)
        self.base: dict[str, tuple[int, int]] = dict.fromkeys(p.machines, (0, 0))  # counters at the last restart
        #: per machine, the value of each of ``_METRICS`` last published (``_UNSHOWN`` before the first)
        self.shown: dict[str, list[Any]] = {m: [_UNSHOWN] * len(_METRICS) for m in p.machines}
        #: per machine, each of ``_METRICS``' topic, tag, node id and data type, made once (a change publishes them)
        self._names = {m: [self._name(m, metric) for metric in _METRICS] for m in p.machines}
        self._endpoint = f"sim:{self.name}"
        #: every sample published: (machine, metric, ms) -> value
        self.samples: dict[tuple[str, str, int], Any] = {}
        self.truth = {m.id: MachineTruth(m.ideal_cycle_time) for m in self.model.machines.values()}
        self.online = True
        self.restarts: list[tuple[float, float]] = []
        self.started = now
        _PLCS.setdefault(asyncio.get_running_loop(), {})[self.name] = self
        self._machines = list(self.model.machines.values())
        for machine in self.model.machines.values():
            self.truth[machine.id].states.append((round(machine.state_since * 1000), machine.state))
        # the machines step on a timer callback of the loop (``ctx.timer``), not in a task: a task waiting for each
        # part or transition paid a future, a timer, its wake-up and its coroutines resumed (the simulated day)
        self._when = self.started  # the step the timer is set for
        self._begun = False  # the first values shown (a restart before that changes no plan: _begin sees it)
        self._timer: PeriodicTimer = self.ctx.timer(1.0, self._begin, name="machines",
                                                    initial_delay=self.started - self.ctx.clock.time())

    # -- the machines ------------------------------------------------------------------------------------
    def _begin(self) -> float:
        """The timer's first call: every machine's values shown, then the steps."""
        for machine in self.model.machines.values():
            self._show(machine, self.started, initial=True)
        self._timer.fn = self._tick
        self._begun = True
        return self._plan()

    def _tick(self) -> float:
        """The planned step, then each one already due; returns the delay to the next one."""
        self._step(self._when)
        return self._plan()

    def _plan(self) -> float:
        """Step what is due now; set :attr:`_when` to the next step and return the delay to it."""
        machines = self._machines
        while True:
            when = math.inf  # the earliest next part or transition of any machine, no generator a step
            for machine in machines:
                part, until = machine.part_due, machine.state_until
                due = part if part is not None and part <= until else until
                if due < when:
                    when = due
            delay = when - self.ctx.clock.time()
            if delay > 0:
                self._when = when
                return delay
            self._step(when)

    def _wake(self) -> None:
        """The machines' plans changed (a restart): the next step planned again from now."""
        if not self._begun:
            return
        self._timer.cancel()
        self._timer = self.ctx.timer(1.0, self._tick, name="machines", initial_delay=self._plan())

    def _step(self, when: float) -> None:
        for machine in self._machines:
            counters = machine.totals  # its good and total, read without the properties (a step per part)
            state, total, good = machine.state, counters.total, counters.good
            if not machine.advance(when):
                continue
            truth = self.truth[machine.id]
            if counters.total != total:
                truth.parts.append((round(machine.last_part_at * 1000), counters.good != good))
            if machine.state != state:
                truth.states.append((round(machine.state_since * 1000), machine.state))
            if self.online:
                self._show(machine, when)

    def _show(self, machine: Machine, now: float, *, initial: bool = False, stamp: float | None = None) -> None:
        """Publish what changed since it was last shown, in ``_METRICS``' order (the fault code first: the state's
        event carries it). The counters are stamped ``stamp`` when given (the PLC back from a restart). Called
        for every part and transition: the values are compared by position, with no dict of them per call."""
        good0, total0 = self.base[machine.id]
        counters, state = machine.totals, machine.state  # the counters read without the properties
        since, counted = machine.state_since, machine.last_part_at if stamp is None else stamp
        values = (machine.fault_code, state, STATES[state], counters.good - good0, counters.total - total0,
                  machine.ideal_cycle_time)
        stamps = (since, since, since, counted, counted, self.started)
        shown, names = self.shown[machine.id], self._names[machine.id]
        for i in _POSITIONS:
            value = values[i]
            if not initial and shown[i] == value:
                continue
            shown[i] = value
            ms = round(stamps[i] * 1000)
            topic, tag, node_id, data_type, metric = names[i]
            self.samples[(machine.id, metric, ms)] = value
            self.ctx.publish_soon(topic, DATA_CHANGE, {
                "node_id": node_id, "tag": tag, "value": value,
                "data_type": data_type, "status": "Good", "status_code": 0, "quality": "good",
                "source_timestamp": ms / 1000, "server_timestamp": now, "endpoint": self._endpoint}, key=tag)

    def _name(self, machine: str, metric: str) -> tuple[str, str, str, str, str]:
        """The bus topic, tag, OPC UA node id and data type of one machine's metric, and the metric."""
        tag = f"{machine}/{metric}"
        topic = self.params.topic.format(source=self.name, tag=tag)
        return topic, tag, f"ns=1;s={machine}.{metric}", _DATATYPES[metric], metric

    # -- chaos ---------------------------------------------------------------------------------------------
    async def restart(self, seconds: float) -> None:
        """Restart the PLC: machines down now, nothing published for ``seconds``, back running at counters 0."""
        now = self.ctx.clock.time()
        back = now + seconds
        for machine in self.model.machines.values():
            machine.advance(now)
            if machine.state != "down":
                machine.totals.stops["down"] += 1
                self.truth[machine.id].states.append((round(now * 1000), "down"))
            machine.state, machine.fault_code = "down", self.params.restart_fault_code
            machine.state_since, machine.state_until, machine.part_due = now, back, None
            self._show(machine, now)
        self.online = False
        self.restarts.append((now, back))
        self._wake()
        self.ctx.spawn(self._back(back), name="restart")

    async def _back(self, back: float) -> None:
        await self.ctx.clock.sleep(max(0.0, back - self.ctx.clock.time()))
        self._step(back)  # the machines run again (the model's own transition at state_until)
        self.online = True
        for machine in self.model.machines.values():
            self.base[machine.id] = (machine.good, machine.total)
            self._show(machine, back, stamp=back)
        self._wake()

    def report(self) -> dict[str, Any]:
        return {"machines": self.model.totals(), "samples": len(self.samples), "restarts": len(self.restarts),
                "online": self.online}
