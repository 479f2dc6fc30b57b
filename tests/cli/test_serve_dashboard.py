"""forge run's dashboard: which one a run serves (--dashboard over settings.dashboard, the embedded
default, never simulated), and a multi-process plant where each child serves its own page and the
parent's page links them (real processes, real sockets)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
import typer

from forge_core.cli.serve_dashboard import resolve
from forge_core.plant import load_plant
from forge_core.testing import watched_popen

PLANT = """
version: 1
plant: {name: boards}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 0.5}, replicas: 2}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
profiles:
  embedded: {}
  quiet: {settings: {dashboard: {enabled: false}}}
  fixed: {settings: {dashboard: {enabled: true, port: 0, interval: 0.3}}}
  procs: {runtime: {processes: per_component, health: {port: false}}}
"""


def manifest(plant_dir: Any, profile: str | None):
    return load_plant(plant_dir(PLANT) / "plant.yaml", profile=profile)[1]


def test_resolve(plant_dir):
    embedded = resolve(manifest(plant_dir, None), None, simulate=False)
    assert embedded is not None and embedded[1] is False and embedded[0].port is None  # the default, implicit
    assert resolve(manifest(plant_dir, None), None, simulate=True) is None  # virtual time serves nothing
    assert resolve(manifest(plant_dir, None), "off", simulate=False) is None
    assert resolve(manifest(plant_dir, "quiet"), None, simulate=False) is None
    asked = resolve(manifest(plant_dir, "quiet"), "0.0.0.0:8123", simulate=False)
    assert asked is not None and asked[1] is True and (asked[0].host, asked[0].port) == ("0.0.0.0", 8123)
    fixed = resolve(manifest(plant_dir, "fixed"), None, simulate=False)
    assert fixed is not None and fixed[1] is True and fixed[0].interval == 0.3
    assert resolve(manifest(plant_dir, "procs"), None, simulate=False) is None  # not embedded: off
    with pytest.raises(typer.BadParameter, match="not a port number"):
        resolve(manifest(plant_dir, None), "localhost:http", simulate=False)


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return dict(json.loads(reply.read()))


def wait_for(condition: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {seconds} s")


@pytest.mark.slow
def test_each_child_serves_its_own_page_and_the_parent_links_them(plant_dir, forge_env):
    directory = plant_dir(PLANT)
    proc = watched_popen([sys.executable, "-m", "forge_core.cli", "run", str(directory), "--profile", "procs",
                             "--dashboard", "127.0.0.1:0", "--duration", "40s"],
                            env=forge_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not any("dashboard on" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "forge run ended before printing its dashboard: " + "".join(lines)
            lines.append(line)
        parent = next(line for line in lines if "dashboard on" in line).split("dashboard on ")[1].split()[0]

        def children() -> dict[str, Any] | None:
            rows = {r["instance"]: r for r in get(parent + "api/state")["components"]}
            return rows if rows and all(r.get("dashboard") for r in rows.values()) else None

        rows = wait_for(children, "every child's dashboard URL on the parent's page")
        assert set(rows) == {"m1-0", "m1-1"} and all(r["process"].startswith("pid ") for r in rows.values())
        child = get(rows["m1-1"]["dashboard"] + "api/state")  # the child's own page: its own instance
        assert [c["instance"] for c in child["components"]] == ["m1-1"]
        assert child["components"][0]["status"] == "UP" and child["plant"]["pid"] != get(parent + "api/state")[
            "plant"]["pid"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
