"""``oee_line.audit``: checks the simulated run's invariants (:mod:`oee_line.sim.invariants`) at its end.

It follows the host's ``sparkplug.metrics`` on the bus (order, seq gaps, rebirths) and at the end
compares storage with the ``oee_line.sim_plc``'s ground truth up to a horizon: ``settle`` seconds
before the end, and before any fault that had not been over for ``settle`` seconds by then (what it
held back may still be on its way). Its report says what it compared.
"""

from __future__ import annotations

from typing import Any

from forge_core import Check, Component, Envelope, Subscribes
from oee_line.settings import AuditParams, OeeParams
from oee_line.sim.invariants import BusOrder, gaps_repaired, oee_matches, samples_stored
from oee_line.sim.plc import SimPlc, plc
from oee_line.storage.store import TimeSeriesStore

__all__ = ["Audit"]


class Audit(Component):
    Params = AuditParams
    params: AuditParams
    subscribes = (Subscribes("sparkplug.metrics", param="topics"),)

    async def start(self) -> None:
        self.order = BusOrder()
        self.runtime: Any = self.ctx.services.get("runtime")
        if self.params.reset_storage:  # TimescaleDB's rollups are continuous aggregates: no DELETE there
            TimeSeriesStore(self.ctx.storage).clear()
        for pattern in self.params.topics:
            await self.ctx.subscribe(pattern, self.on_metrics, types=["sparkplug.metrics"])
        self.plc: SimPlc | None = None
        self.ctx.spawn(self._find_plc(), name="find-plc")

    async def _find_plc(self) -> None:
        while self.plc is None:
            self.plc = plc(self.params.plc)
            await self.ctx.clock.sleep(0.1)

    def on_metrics(self, envelope: Envelope) -> None:  # sync: the bus delivers it without a coroutine
        self.order.see(envelope.payload, self.ctx.clock.time())

    def _component(self, name: str) -> Any:
        supervisor = self.runtime.supervisors.get(name) if self.runtime is not None else None
        return supervisor.instance if supervisor is not None else None

    def horizon(self) -> float:
        now = self.ctx.clock.time()
        horizon = now - self.params.settle
        chaos = self._component("chaos")
        for fault in getattr(chaos, "faults", []):
            if fault["end"] + self.params.settle > now:
                horizon = min(horizon, fault["start"])
        return horizon

    def _blind(self) -> list[tuple[float, float]]:
        chaos = self._component("chaos")
        return [(f["start"], f["start"] + f["noticed_by_edge"]) for f in getattr(chaos, "faults", [])
                if f["kind"] == "edge_network_loss"]

    def checks(self) -> list[Check]:
        if self.plc is None:
            return [Check("the simulated PLC ran", False, f"no oee_line.sim_plc {self.params.plc!r} in this plant")]
        horizon = self.horizon()
        host = self._component(self.params.host)
        reorder = getattr(getattr(host, "params", None), "reorder_timeout", 2.0)
        oee = self._component("oee")
        params = oee.params if oee is not None else OeeParams()
        checks = [samples_stored(self.ctx.storage, self.plc.samples, horizon, blind=self._blind()),
                  self.order.check(),
                  gaps_repaired(self.order.gaps, self.ctx.clock.time(), within=reorder + 60.0)]
        if horizon > self.plc.started:
            checks.append(oee_matches(self.ctx.storage, self.plc.truth, params, self.plc.started, horizon))
        else:
            checks.append(Check("OEE from stored data equals OEE from the simulator's ground truth", False,
                                f"no settled window: the horizon {horizon:.0f} is before the start"))
        return checks

    def report(self) -> dict[str, Any]:
        edge = self._component(self.params.edge)
        host = self._component(self.params.host)
        return {"horizon_s": round(self.horizon() - (self.plc.started if self.plc else 0.0), 3),
                "samples": len(self.plc.samples) if self.plc else 0, "bus_messages": self.order.messages,
                "nbirths": self.order.births, "seq_gaps": len(self.order.gaps),
                "edge_outbox_at_end": edge.report().get("outbox_depth") if edge is not None else None,
                "host": {k: v for k, v in (host.report() if host is not None else {}).items()
                         if k in ("births", "deaths", "seq_gaps", "rebirth_requests", "historical", "data")}}
