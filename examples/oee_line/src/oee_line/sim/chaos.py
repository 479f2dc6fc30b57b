"""``oee_line.chaos``: seeded faults of the OEE line under virtual time.

Every ``min_interval..max_interval`` seconds (the instance's seeded stream, so ``--seed N`` replays a
day) it draws one fault by ``weights`` and a length from its range:

* **broker_outage**: the simulated broker dies (every connection closes, no Will) and comes back;
* **plc_restart**: the simulated PLC restarts (``oee_line.sim_plc.restart``: machines down, PLC quiet,
  counters back at 0);
* **edge_network_loss**: the edge node's network goes away; the broker notices after 1.5 x keepalive
  and sends the NDEATH Will, the edge node's client after U(1, 2) x keepalive (paho's PINGREQ
  timing); what the node writes in between is lost as on a real socket (QoS 0).

One fault at a time. Each is logged and kept in :attr:`Chaos.faults` (start, end, kind), which the audit
reads to know which samples are still settling at the end.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from forge_core import Component
from oee_line.settings import ChaosParams
from oee_line.sim.broker import broker
from oee_line.sim.plc import plc

__all__ = ["Chaos"]


class Chaos(Component):
    Params = ChaosParams
    params: ChaosParams

    async def start(self) -> None:
        self.counts: Counter[str] = Counter()
        self.faults: list[dict[str, Any]] = []
        if self.params.enabled:
            self.ctx.spawn(self._rampage(), name="chaos")

    async def _rampage(self) -> None:
        p, rnd, clock = self.params, self.ctx.random, self.ctx.clock
        kinds = [k for k, w in p.weights.items() if w > 0]
        weights = [p.weights[k] for k in kinds]
        await clock.sleep(p.quiet_after)
        while True:
            await clock.sleep(rnd.uniform(p.min_interval, p.max_interval))
            kind = rnd.choices(kinds, weights)[0]
            lo, hi = {"broker_outage": p.broker_outage, "plc_restart": p.plc_restart,
                      "edge_network_loss": p.network_loss}[kind]
            seconds = round(rnd.uniform(lo, hi), 3)
            start = clock.time()
            fault: dict[str, Any] = {"kind": kind, "start": round(start, 3), "end": round(start + seconds, 3)}
            self.faults.append(fault)
            self.counts[kind] += 1
            self.ctx.log.info("chaos: %s for %.1f s", kind, seconds)
            if kind == "broker_outage":
                sim = broker(p.broker)
                sim.go_down()
                await clock.sleep(seconds)
                sim.come_up()
            elif kind == "plc_restart":
                target = plc(p.plc)
                if target is None:
                    self.counts["skipped"] += 1
                    continue
                await target.restart(seconds)
                await clock.sleep(seconds)
            else:
                sim = broker(p.broker)
                keepalive = self._keepalive()
                fault["noticed_by_edge"] = round(rnd.uniform(1.0, 2.0) * keepalive, 3)
                sim.cut(p.edge_client, 1.5 * keepalive, fault["noticed_by_edge"])
                await clock.sleep(seconds)
                sim.restore(p.edge_client)

    def _keepalive(self) -> float:
        sim = broker(self.params.broker)
        client = sim.sessions.get(self.params.edge_client)
        return float(client.settings.keepalive) if client is not None else 5.0

    def report(self) -> dict[str, Any]:
        if not self.params.enabled:
            return {"enabled": False}
        return {"enabled": True, **dict(sorted(self.counts.items())), "latest": self.faults[-5:]}
