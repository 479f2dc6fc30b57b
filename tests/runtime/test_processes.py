"""The multi-process runner: one OS process per component instance, SIGKILL and revive, restart
with backoff, crash-loop give-up, SIGTERM to the parent stops every child with a merged summary.

Dead letters across processes: test_process_dead_letters.py; each child's ports: test_process_ports.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from forge_core.plant import load_plant
from forge_core.runtime.processes import ProcessRunner
from forge_core.testing import watched_popen
from tests.runtime.process_helpers import MANIFEST, PLUGIN, alive, until, up


def test_children_are_os_processes_killed_revived_and_restarted(plant_dir):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    plugins, manifest = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(manifest, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        children = runner.children
        await until(lambda: all(map(up, children.values())), timeout=60)
        assert sorted(children) == ["m1-0", "m1-1", "m2"]
        pids = {name: c.pid for name, c in children.items()}
        assert len(set(pids.values())) == 3 and os.getpid() not in pids.values()
        assert runner.runtime.instances() == ["m1-0", "m1-1", "m2"]

        await runner.runtime.kill("m1-1")  # chaos: SIGKILL, no restart until revive
        assert children["m1-1"].state == "killed" and not alive(pids["m1-1"])
        assert children["m1-1"].lives[-1].code == -signal.SIGKILL
        runner.runtime.revive("m1-1")
        await until(lambda: children["m1-1"].pid not in (None, pids["m1-1"]))

        os.kill(pids["m2"], signal.SIGKILL)  # a crash: the parent restarts it after the backoff
        await until(lambda: children["m2"].restarts == 1 and children["m2"].pid not in (None, pids["m2"]))
        await until(lambda: all(map(up, children.values())), timeout=60)
        await asyncio.sleep(1.0)  # let the new lives publish
        summary = await runner.stop()
        return summary

    summary = asyncio.run(scenario())
    assert summary.components == {"m1-0": "stopped", "m1-1": "stopped", "m2": "stopped"}, summary.extra
    assert summary.restarts == {"m2": 1}
    assert summary.checks_passed, [c for c in summary.checks if not c.passed]
    assert summary.published["test.reading"] > 10
    procs = summary.extra["processes"]
    assert procs["m1-1"]["kills"] == 1 and len(procs["m1-1"]["pids"]) == 2
    assert not any(alive(pid) for p in procs.values() for pid in p["pids"])


def test_a_child_that_keeps_dying_is_given_up(plant_dir):
    manifest = MANIFEST.replace("m2: {type: test.machine, params: {interval: 0.2}}", "m2: {type: test.exiter}")
    path = plant_dir(manifest, plugin=PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: runner.children["m2"].state == "failed", timeout=60)
        await until(lambda: up(runner.children["m1-0"]) and up(runner.children["m1-1"]), timeout=60)
        return await runner.stop()

    summary = asyncio.run(scenario())
    assert summary.failed == ["m2"]
    assert summary.extra["processes"]["m2"]["exit_codes"] == [3, 3, 3]  # max_restarts 2: the third exit gives up
    assert summary.extra["processes"]["m2"]["last_error"] == "exited with code 3"
    assert summary.components["m1-0"] == "stopped"


def test_sigterm_to_forge_run_stops_every_child_and_prints_one_summary(plant_dir):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    parent = watched_popen([sys.executable, "-m", "forge_core.cli", "run", str(path), "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        logs = path / ".forge" / "processes"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                (logs / f"{n}.log").exists() and "running plant" in (logs / f"{n}.log").read_text(errors="replace")
                for n in ("m1-0", "m1-1", "m2")):
            time.sleep(0.1)
        time.sleep(2.0)
        parent.send_signal(signal.SIGTERM)
        out, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["components"] == {"m1-0": "stopped", "m1-1": "stopped", "m2": "stopped"}
    assert summary["stop_reason"] == "SIGTERM"
    assert summary["published"]["test.reading"] > 5
    pids = [pid for p in summary["extra"]["processes"].values() for pid in p["pids"]]
    assert len(pids) == 3 and not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("only", ["m1-1", "m1"])
def test_only_runs_in_process_even_with_per_component(plant_dir, only):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(path), "--only", only, "--json",
                             "--duration", "1s", "--data-dir", str(path / "d")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert sorted(summary["components"]) == (["m1-1"] if only == "m1-1" else ["m1-0", "m1-1"])
    assert "processes" not in summary["extra"]


def test_a_killed_instance_s_checks_are_listed_as_not_run_never_absent(plant_dir):
    """Issue 11 §5: a life SIGKILLed by chaos writes no summary; its checks say when it was killed."""
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    plugins, manifest = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(manifest, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: all(map(up, runner.children.values())), timeout=60)
        before = time.time()
        await runner.runtime.kill("m1-1")  # dead at the end: never revived
        return before, await runner.stop()

    before, summary = asyncio.run(scenario())
    assert summary.components["m1-1"] == "killed"
    mine = [c for c in summary.checks if c.component == "m1-1"]
    assert mine, f"m1-1's checks are absent: {[(c.component, c.name) for c in summary.checks]}"
    sibling = {c.name for c in summary.checks if c.component == "m1-0"}
    assert {c.name for c in mine} == (sibling or {"checks"})
    for check in mine:
        assert check.detail.startswith("not run: killed at "), check
        at = check.detail.removeprefix("not run: killed at ").split(" ")[0]
        from datetime import datetime
        assert before - 1 <= datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() <= time.time()
    assert summary.not_run == mine and summary.to_dict()["checks_not_run"] == len(mine)
    # the whole-plant checks ran once, in the parent, over the merged summary; never in a child
    seen = [c for c in summary.checks if c.name == "plant: instances seen"]
    assert [(c.component, c.detail) for c in seen] == [("plant", "m1-0, m1-1, m2")], seen
