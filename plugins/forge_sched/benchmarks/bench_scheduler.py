"""CPU cost of sched.blade_scheduler at scale: N machines beating every second, active + shadow.

    .venv/bin/python plugins/forge_sched/benchmarks/bench_scheduler.py [--machines 1000] [--seconds 60]
                                                                       [--state memory|sql]

A "swarm" component plays N cutting machines (one heartbeat each per second, obeys fenced
assignments). The plant runs under virtual time; the figures are process CPU seconds, so "real
time on one core" means CPU per 1,000 heartbeats < 1 s. Reported: the whole plant (bus, both
scheduler replicas, the swarm) and the scheduler's heartbeat handler alone (called directly).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from forge_core import Envelope
from forge_core.testing import TestPlant

SWARM = '''
from forge_core import Component, Settings, hookimpl, subscribe


class SwarmParams(Settings):
    machines: int


class Swarm(Component):
    Params = SwarmParams

    async def start(self):
        self.n = self.params.machines
        self.blades = {}
        self.ctx.every(1.0, self.beat)

    async def beat(self):
        for mid in range(self.n):
            body = {"title": "heartbeat", "machineId": mid}
            blade = self.blades.get(mid)
            if blade is not None:
                body["bladeType"] = blade
            await self.ctx.publish("heartbeats", "sched.machine_heartbeat", body)

    @subscribe("sched/assign_blade", fenced="scheduler")
    def on_assign(self, envelope):
        self.blades[envelope.payload["machineId"]] = envelope.payload["bladeType"]


@hookimpl
def forge_register_components(registry):
    registry.add("bench.swarm", Swarm)
'''

MANIFEST = """
version: 1
plant: {{name: sched_bench}}
plugins: [sched]
local_plugins: [swarm.py]
transports: {{bus: {{type: memory}}}}
components:
  swarm: {{type: bench.swarm, params: {{machines: {machines}}}}}
  scheduler: {{type: sched.blade_scheduler, replicas: 2}}
tactics:
  leader: {{use: memory, ttl: 5.0, renew_every: 3.0, retry_every: 1.0}}
  state: {{use: {state}}}
storage: {{url: "sqlite:///{{plant_dir}}/bench.db", migrate_on_start: false}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--state", choices=["memory", "sql"], default="memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "swarm.py").write_text(SWARM)
        (root / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(
            machines=args.machines, state=args.state)))
        with TestPlant(root, seed=1, record_trace=False) as plant:
            plant.advance(15)                     # discovery and the first assignments
            plant.observed.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            plant.advance(args.seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            plant.observed.clear()
            beats = args.machines * args.seconds
            leader = next(plant.component(n) for n in ("scheduler-0", "scheduler-1")
                          if plant.component(n).leading)
            assert leader.stats["assignments"] == args.machines, leader.stats
            assert abs(leader.counts["A"] - leader.counts["B"]) <= 1
            # the handler alone, fed directly (dedup window passes: 1.01 s between rounds)
            rounds = 20
            envs = [Envelope(id=f"b{m}", type="sched.machine_heartbeat", source=str(m), time=0.0,
                             payload={"title": "heartbeat", "machineId": m, "bladeType": "A" if m % 2 else "B"})
                    for m in range(args.machines)]
            handler_cpu = 0.0
            for _ in range(rounds):
                plant.clock.run_for(1.01)
                t0 = time.process_time()
                for env in envs:
                    leader.on_heartbeat(env)
                handler_cpu += time.process_time() - t0
    per_k = cpu / beats * 1000
    print(f"machines {args.machines}, {args.seconds:.0f} s of plant time, state {args.state}")
    print(f"whole plant (bus + 2 schedulers + swarm): {cpu:.2f} s CPU for {beats:.0f} heartbeats "
          f"= {per_k * 1000:.1f} ms CPU per 1,000 heartbeats ({wall:.2f} s wall); real time needs < 1000 ms")
    print(f"scheduler heartbeat handler alone: {handler_cpu / (rounds * args.machines) * 1e6:.2f} µs per heartbeat "
          f"= {handler_cpu / (rounds * args.machines) * 1e6:.2f} ms CPU per 1,000 heartbeats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
