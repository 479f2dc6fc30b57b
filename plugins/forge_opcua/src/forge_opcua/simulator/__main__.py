"""``python -m forge_opcua.simulator``: the simulated PLC in a process of its own, on the real clock.

    python -m forge_opcua.simulator --port 4840 --machines M1,M2 --seed 7
    python -m forge_opcua.simulator --params '{"port": 4841, "timing": {"mean_running": 5}}'

Runs until SIGTERM or SIGINT (then stops the server cleanly). ``--ramp-rate N`` counts
Diagnostics.Ramp up N times a second, each value stamped with the time it was written, for
latency benchmarks. Used by ``forge_opcua.testing.PlcSimulatorServer``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time

from forge_opcua.settings import PlcSimulatorParams
from forge_opcua.simulator.server import PlcServer


def parse(argv: list[str]) -> tuple[PlcSimulatorParams, int, float]:
    base = PlcSimulatorParams()
    parser = argparse.ArgumentParser(prog="python -m forge_opcua.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=base.host)
    parser.add_argument("--port", type=int, default=base.port)
    parser.add_argument("--path", default=base.path)
    parser.add_argument("--machines", default=",".join(base.machines), help="comma-separated machine ids")
    parser.add_argument("--tick", type=float, default=base.tick)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--params", default="{}", help="PlcSimulatorParams as a JSON object; wins over the above")
    parser.add_argument("--ramp-rate", type=float, default=0.0, help="Diagnostics.Ramp updates per second")
    args = parser.parse_args(argv)
    chosen = {"host": args.host, "port": args.port, "path": args.path, "tick": args.tick,
              "machines": [m for m in args.machines.split(",") if m]}
    params = PlcSimulatorParams.load({**chosen, **json.loads(args.params)}, where="--params")
    return params, args.seed, args.ramp_rate


async def serve(params: PlcSimulatorParams, seed: int, ramp_rate: float) -> None:
    plc = PlcServer(params, random.Random(seed), time.time(), who="PLC simulator")
    await plc.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"serving {plc.endpoint}", flush=True)

    async def ramp() -> None:
        period = 1.0 / ramp_rate
        due = time.monotonic()
        while True:
            due += period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await plc.advance_ramp(time.time())

    async def tick() -> None:
        while True:
            await plc.update(time.time())
            await asyncio.sleep(params.tick)

    tasks = [asyncio.create_task(tick())]
    if ramp_rate > 0:
        tasks.append(asyncio.create_task(ramp()))
    await stop.wait()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await plc.stop()
    print(json.dumps(plc.report()), flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    params, seed, ramp_rate = parse(sys.argv[1:] if argv is None else argv)
    asyncio.run(serve(params, seed, ramp_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
