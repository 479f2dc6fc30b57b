"""Start-up time (issue 17 item 5): ``import forge_core``, ``forge --version`` and ``forge --help``
beside the interpreter's own floor (``python -c pass``), timed by hyperfine in the same run.

Targets: ``import forge_core`` < 0.2 s, ``forge --version`` and ``forge --help`` < 0.5 s. Each
round runs every command with hyperfine (warm-up, then ``--runs``); rounds alternate so a load
spike hits all commands alike; figures are ranges of the rounds' means, wall and CPU (user +
system, hyperfine's; the steadier figure on a shared machine). ``forge --help`` loads every
installed plugin's hook module (it lists their commands; what they register is imported on first
use), so it is also timed with ``FORGE_DISABLE_PLUGIN_AUTOLOAD=1`` (Forge's own part). Then
``python -X importtime`` lists the modules costing most (cumulative) for ``import forge_core`` and
``forge --help``.

    python benchmarks/bench_startup.py [--rounds 3] [--runs 10] [--top 12]

Needs hyperfine (Debian: ``apt-get install hyperfine``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PYTHON = sys.executable
FORGE = str(Path(PYTHON).with_name("forge"))

#: (label, command, extra environment, target seconds or None for the floor)
CASES: list[tuple[str, list[str], dict[str, str], float | None]] = [
    ("python -c pass (floor)", [PYTHON, "-c", "pass"], {}, None),
    ("import forge_core", [PYTHON, "-c", "import forge_core"], {}, 0.2),
    ("forge --version", [FORGE, "--version"], {}, 0.5),
    ("forge --help", [FORGE, "--help"], {}, 0.5),
    ("forge --help, no plugins", [FORGE, "--help"], {"FORGE_DISABLE_PLUGIN_AUTOLOAD": "1"}, None),
]


def hyperfine_round(runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Mean wall and mean CPU (user + system) seconds per case for one round (each case: 2 warm-ups,
    then ``runs`` runs)."""
    means: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for label, argv, env, _ in CASES:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = ["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--style", "none",
                   "--export-json", out.name, shlex.join(argv)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, **env})
            result = json.loads(Path(out.name).read_text())["results"][0]
            means[label] = result["mean"]
            cpu[label] = result["user"] + result["system"]
    return means, cpu


def importtime(argv: list[str], env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """The ``top`` modules by cumulative import time (µs) when running ``argv`` under -X importtime."""
    python_argv = [PYTHON, "-X", "importtime", *argv[1:]] if argv[0] == PYTHON else \
        [PYTHON, "-X", "importtime", "-c", "import sys; from forge_core.cli.main import main; sys.argv[0] = 'forge'; "
         f"main({argv[1:]!r})"]
    proc = subprocess.run(python_argv, capture_output=True, text=True, env={**os.environ, **env})
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if not name.startswith("  "):  # direct imports of the script: the roots of the tree
                rows.append((int(cumulative), name.strip()))
            elif len(name) - len(name.lstrip()) <= 7:  # and their children two levels down
                rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    if shutil.which("hyperfine") is None:
        sys.exit("hyperfine is not installed (Debian: apt-get install hyperfine)")
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}")
    measured = [hyperfine_round(args.runs) for _ in range(args.rounds)]
    rounds = [wall for wall, _ in measured]
    print(f"load after:  {Path('/proc/loadavg').read_text().strip()}")
    floor = [r[CASES[0][0]] for r in rounds]
    header = f"{'mean s (range of rounds)':>26} {'above floor s':>16} {'target':>7} {'target/measured':>16}"
    print(f"\n{'command':28} {header}")
    for label, _, _, target in CASES:
        means = [r[label] for r in rounds]
        above = [m - f for m, f in zip(means, floor, strict=True)]
        span = f"{min(means):.3f}-{max(means):.3f}"
        over = f"{min(above):.3f}-{max(above):.3f}"
        if target is None:
            print(f"{label:28} {span:>26} {over:>16} {'-':>7} {'-':>16}")
            continue
        ratio = f"{target / max(means):.2f}-{target / min(means):.2f}"
        verdict = "met" if max(means) < target else ("met in some rounds" if min(means) < target else "not met")
        print(f"{label:28} {span:>26} {over:>16} {target:>6.1f}s {ratio:>16}  {verdict}")
    print("\n(target/measured > 1: under the target; the floor is the interpreter starting with this venv's site)")
    print(f"\n{'command':28} {'CPU s, user+system (range)':>28} {'above floor s':>16}")
    for label, _, _, _ in CASES:
        cpu = [c[label] for _, c in measured]
        above = [c[label] - c[CASES[0][0]] for _, c in measured]
        print(f"{label:28} {f'{min(cpu):.3f}-{max(cpu):.3f}':>28} {f'{min(above):.3f}-{max(above):.3f}':>16}")
    for label, argv, env, _ in CASES[1:4:2]:
        print(f"\npython -X importtime, {label}: top {args.top} by cumulative time")
        for micros, name in importtime(argv, env, args.top):
            print(f"  {micros / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
