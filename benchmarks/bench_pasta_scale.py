"""The pasta scheduler and storage monitor with 1,000 simulated machines at a 1 s heartbeat, in
real time, on one core.

    python benchmarks/bench_pasta_scale.py [--machines 1000] [--seconds 60] [--silenced 50]

One process pinned to one CPU (os.sched_setaffinity) runs sched.blade_scheduler (2 replicas:
active and shadow), mms.storage_monitor and a load component that beats for every machine once a
second (sched.machine_heartbeat bodies, with the blade the scheduler assigned) and publishes
mms.storage_levels. Topics and types are the pasta plant's (examples/pasta_plant/plant.yaml): the
scheduler on the original system's topics, the storage monitor alerting with sched.storage_alert;
every type is a plugin's own, so no plant schemas are loaded. After discovery it silences
``--silenced`` machines and measures, for each, the time from its last beat to its removal from the
leader's view (bound: machine_timeout 10 s + one health check 5 s). Printed: CPU share of the core
over the steady phase, and the removal lags beside the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import textwrap
import time
from pathlib import Path

LOAD = textwrap.dedent('''
    import asyncio
    from forge_core import Component, hookimpl, subscribe

    RESULTS = {}

    class Load(Component):
        async def start(self):
            p = self.params
            self.n, self.silence_at, self.silenced = p["machines"], p["silence_at"], p["silenced"]
            self.blades, self.last_beat, self.removed = {}, {}, {}
            RESULTS["load"] = self
            self.ctx.spawn(self.beat(), name="beat")
            self.ctx.every(1.0, self.levels, name="levels")
            self.ctx.every(0.05, self.watch, name="watch")

        @subscribe("productionPlan/assignBlade", shared=False)
        @subscribe("productionPlan/swapBlade", shared=False)
        def on_command(self, envelope):
            self.blades[envelope.payload["machineId"]] = envelope.payload["bladeType"]

        async def beat(self):
            clock, start = self.ctx.clock, self.ctx.clock.monotonic()
            tick = 0
            while True:
                now = clock.monotonic() - start
                for i in range(self.n):
                    if i < self.silenced and now >= self.silence_at:
                        continue
                    body = {"title": "heartbeat", "machineId": i}
                    if i in self.blades:
                        body["bladeType"] = self.blades[i]
                    await self.ctx.publish("heartbeats", "sched.machine_heartbeat", body, key=str(i))
                    self.last_beat[i] = clock.monotonic()
                tick += 1
                await clock.sleep(max(0.0, start + tick - clock.monotonic()))

        async def levels(self):
            await self.ctx.publish("storage/levels", "mms.storage_levels",
                                   {"title": "StorageLevels", "aFresh": 50, "aDry": 50, "bFresh": 50, "bDry": 50})

        def watch(self):
            runtime = self.ctx.services["runtime"]
            for name in ("scheduler-0", "scheduler-1"):
                sched = runtime.supervisors[name].instance
                if sched is not None and sched.elector.is_leader:
                    now = self.ctx.clock.monotonic()
                    for i in range(self.silenced):
                        if i not in self.removed and i in self.last_beat and i not in sched.machines \\
                                and now - self.last_beat[i] > 1.5:
                            self.removed[i] = now - self.last_beat[i]
                    RESULTS["known"] = len(sched.machines)

    @hookimpl
    def forge_register_components(registry):
        registry.add("bench.load", Load)
''')

MANIFEST = """
version: 1
plant: {{name: pasta_scale}}
plugins: [sched, mms]
local_plugins: [load.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
components:
  scheduler:
    type: sched.blade_scheduler
    replicas: 2
    params:
      topics: {{heartbeats: heartbeats, assign: productionPlan/assignBlade, swap: productionPlan/swapBlade,
               swapped: productionPlan/bladeSwapped, change_fresh: sorting/changeFreshAmount,
               fresh_changed: sorting/freshAmountChanged, alert: storage/alert}}
  storage_monitor:
    type: mms.storage_monitor
    params: {{levels_topic: storage/levels, alert_topic: storage/alert, alert_type: sched.storage_alert}}
  load: {{type: bench.load, params: {{machines: {machines}, silence_at: {silence_at}, silenced: {silenced}}}}}
tactics:
  leader: {{use: memory, ttl: 5.0, renew_every: 3.0, retry_every: 1.0}}
  state: {{use: memory}}
storage: {{url: "sqlite:///{{plant_dir}}/pasta.db", migrate_on_start: true}}
runtime: {{health: false}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--silenced", type=int, default=50)
    parser.add_argument("--silence-at", type=float, default=25.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    from forge_core import RealClock
    from forge_core.runtime import Runtime, load_plant

    with tempfile.TemporaryDirectory() as tmp:
        plant = Path(tmp)
        (plant / "load.py").write_text(LOAD)
        (plant / "plant.yaml").write_text(MANIFEST.format(machines=args.machines,
                                                          silence_at=args.silence_at, silenced=args.silenced))
        plugins, manifest = load_plant(plant)
        runtime = Runtime(manifest, plugins, clock=RealClock(), seed=1)
        marks: dict[str, tuple[float, float]] = {}

        async def run() -> object:
            async def sample() -> None:
                await asyncio.sleep(15.0)  # after discovery (12 s) and the first assignments
                marks["start"] = (time.perf_counter(), time.process_time())
                await asyncio.sleep(args.seconds - 16.0)
                marks["end"] = (time.perf_counter(), time.process_time())

            task = asyncio.ensure_future(sample())
            summary = await runtime.run(args.seconds)
            task.cancel()
            return summary

        summary = asyncio.run(run())
        module = next(m for name, m in plugins.pm.list_name_plugin() if "load" in str(name))
        results = module.RESULTS
    load = results["load"]
    (w0, c0), (w1, c1) = marks["start"], marks["end"]
    share = (c1 - c0) / (w1 - w0)
    lags = sorted(load.removed.values())
    beats = summary.published.get("sched.machine_heartbeat", 0)
    print(f"{args.machines} machines at 1 s, {args.seconds:g} s real time, one core "
          f"({beats} heartbeats, {beats / args.seconds:.0f}/s; {len(load.blades)} machines given a blade)")
    print(f"  CPU share of the core (steady phase): {share * 100:.1f} %  (limit 100 %: ratio {share:.2f})")
    if lags:
        print(f"  removal after the last beat, {len(lags)}/{args.silenced} silenced machines: "
              f"median {lags[len(lags) // 2]:.2f} s, max {lags[-1]:.2f} s  (bound 10 s timeout + 5 s health check "
              f"= 15 s: ratio {lags[-1] / 15:.2f}; vs 10 s: {lags[-1] / 10:.2f})")
    else:
        print(f"  no silenced machine was removed within the run (leader knew {results.get('known')} machines)")


if __name__ == "__main__":
    main()
