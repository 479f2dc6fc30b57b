"""Loading a plant (``forge_core.plant.load_plant``: plugins, manifest, validation), each example in
a fresh interpreter, beside the floor of importing the loader itself.

    python benchmarks/bench_plant_load.py [--runs 3] [plant ...]

Every ``forge run``, each distributed child and each ``TestPlant`` pays this before its first message.
Prints per plant the wall time of ``load_plant`` (median and range over runs), the modules it loaded,
and the machine's load; the floor is ``import forge_core.plant`` in the same interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROBE = """
import json, sys, time
t0 = time.perf_counter()
from forge_core.plant import load_plant
t1 = time.perf_counter()
before = len(sys.modules)
load_plant(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"floor": t1 - t0, "load": t2 - t1, "modules": len(sys.modules), "loader_modules": before}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("plants", nargs="*", default=["pasta_plant", "industry40", "oee_line", "sensor_monitoring"])
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.1f}")
    for plant in args.plants:
        runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLES / plant)], check=True,
                                          capture_output=True, text=True).stdout.strip().splitlines()[-1])
                for _ in range(args.runs)]
        load = [r["load"] for r in runs]
        floor = [r["floor"] for r in runs]
        print(f"  {plant:<18} load_plant {statistics.median(load):5.2f} s ({min(load):.2f}-{max(load):.2f}), "
              f"{runs[0]['loader_modules']} -> {runs[0]['modules']} modules; floor (import the loader) "
              f"{statistics.median(floor):.2f} s")
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
