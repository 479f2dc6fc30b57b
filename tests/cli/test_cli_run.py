"""``forge run``: simulation is deterministic per seed, signals end a run with its summary, exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BOOM = '''
from forge_core import Component, hookimpl


class Boom(Component):
    async def start(self):
        raise RuntimeError("boom")


@hookimpl
def forge_register_components(registry):
    registry.add("test.boom", Boom)
'''


def simulate(invoke, plant: Path, *args: object) -> dict:
    result = invoke("run", plant, "--simulate", "1h", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_simulation_is_deterministic_per_seed(invoke, bakery: Path) -> None:
    first = simulate(invoke, bakery, "--seed", "3")
    again = simulate(invoke, bakery, "--seed", "3")
    other = simulate(invoke, bakery, "--seed", "4")
    assert first["clock"] == "virtual" and first["duration"] == 3600
    assert first["published"] == {"bakery.reading": 3600}
    assert first["trace_digest"] and first["trace_digest"] == again["trace_digest"]
    assert other["trace_digest"] != first["trace_digest"]


def test_simulation_default_seed_is_zero(invoke, bakery: Path) -> None:
    assert simulate(invoke, bakery)["trace_digest"] == simulate(invoke, bakery, "--seed", "0")["trace_digest"]


def test_simulation_prints_a_summary_table(invoke, bakery: Path) -> None:
    result = invoke("run", bakery, "--simulate", "10s", "--seed", "1")
    assert result.exit_code == 0, result.output
    for text in ("components", "machine", "stopped", "bakery.reading", "trace digest", "duration 10s reached"):
        assert text in result.stdout


def test_failed_component_gives_exit_code_1(invoke, tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(BOOM)
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: crash}\nlocal_plugins: [boom.py]\ntransports:\n  bus: {type: memory}\n"
        "components:\n  boom: {type: test.boom}\n"
        "runtime:\n  restart: {initial_backoff: 0.1, max_backoff: 0.1, max_restarts: 2, window: 60}\n")
    result = invoke("run", tmp_path, "--simulate", "10s", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["components"] == {"boom": "failed"}


def test_forge_error_is_one_red_line_without_traceback(forge, bakery: Path) -> None:
    result = forge("run", bakery, "--simulate", "1s", "--only", "nope")
    assert result.returncode == 1
    assert "error: --only names 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    debug = forge("run", bakery, "--simulate", "1s", "--only", "nope", FORGE_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_missing_plant_says_where(invoke, tmp_path: Path) -> None:
    result = invoke("run", tmp_path)
    assert result.exit_code == 1
    assert f"{tmp_path} has no plant.yaml" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_the_run_with_its_summary(forge_env, bakery: Path, sig: signal.Signals) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "forge_core.cli", "run", str(bakery), "--health-port",
                             str(port), "--json"], env=forge_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while "running plant" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "forge run ended before it started"
        assert f"health on http://127.0.0.1:{port}/health" in line
        time.sleep(1.5)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stop_reason"] == sig.name
    assert summary["components"] == {"machine": "stopped", "log": "stopped"}
    assert "bakery.reading from machine" in err  # the logger's lines went to stderr in --json mode


def test_chaos_flag_is_the_chaos_profile(invoke, tmp_path) -> None:
    (tmp_path / "plant.yaml").write_text(
        "version: 1\nplant: {name: c}\ntransports: {bus: {type: memory}}\n"
        "storage: {migrate_on_start: false}\nprofiles: {chaos: {}}\n")
    result = invoke("run", tmp_path, "--simulate", "1s", "--chaos", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["profile"] == "chaos"
    clash = invoke("run", tmp_path, "--simulate", "1s", "--chaos", "--profile", "embedded")
    assert clash.exit_code == 2 and "--chaos is --profile chaos" in clash.output
