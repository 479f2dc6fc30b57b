"""``forge run``: simulation is deterministic per seed, signals end a run with its summary, exit codes."""

from __future__ import annotations

import json
import re
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


def _on_a_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run forge with stdout and stderr on a pseudo-terminal; everything it wrote."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "forge_core.cli", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=timeout)
    os.close(master)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_simulation_shows_progress_on_a_terminal_only(forge, forge_env, bakery: Path) -> None:
    args = ["run", str(bakery), "--simulate", "6h", "--seed", "1", "--profile", "quiet"]
    shown = _on_a_terminal(args, forge_env())
    assert "simulated" in shown and "of 6h" in shown and "messages" in shown and "wall 0:" in shown
    piped = forge(*args)
    assert piped.returncode == 0, piped.stderr
    assert "simulated" not in piped.stdout + piped.stderr and "\x1b[" not in piped.stdout + piped.stderr
    digest = [line for line in piped.stdout.splitlines() if "trace digest" in line]
    assert digest and digest[0].split("│")[2].split()[0] in shown  # the bar does not change the run
    with_logger = _on_a_terminal(["run", str(bakery), "--simulate", "20s", "--seed", "1"], forge_env())
    assert "bakery.reading from machine" in with_logger and "simulated" not in with_logger  # its lines are the progress


CHATTY = '''
import logging

from forge_core import Component, hookimpl

log = logging.getLogger("chatty")


class Chatty(Component):
    async def start(self):
        log.debug("a debug line")
        log.info("an info line")


@hookimpl
def forge_register_components(registry):
    registry.add("test.chatty", Chatty)
'''


@pytest.fixture(scope="module")
def chatty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plant whose one component logs a debug and an info line when it starts."""
    plant = tmp_path_factory.mktemp("chatty")
    (plant / "chatty.py").write_text(CHATTY)
    (plant / "plant.yaml").write_text("version: 1\nplant: {name: chatty}\nlocal_plugins: [chatty.py]\n"
                                      "transports:\n  bus: {type: memory}\ncomponents:\n  c: {type: test.chatty}\n")
    return plant


@pytest.mark.parametrize(("flags", "shown", "hidden"), [
    ([], [], ["an info line", "a debug line"]), (["-v"], ["an info line"], ["a debug line"]),
    (["-vv"], ["an info line", "a debug line"], []), (["--verbose", "--verbose"], ["a debug line"], [])])
def test_verbose_is_a_count(forge, chatty: Path, flags: list[str], shown: list[str], hidden: list[str]) -> None:
    result = forge("run", chatty, "--simulate", "5s", *flags)
    assert result.returncode == 0, result.stderr
    assert all(text in result.stderr for text in shown) and not any(text in result.stderr for text in hidden)
    if "a debug line" in shown:
        assert re.search(r"^2024-01-01T00:00:00\.000Z DEBUG +a debug line", result.stderr, re.M), result.stderr


def test_log_lines_carry_plant_time_in_iso_8601(forge, bakery: Path) -> None:
    result = forge("run", bakery, "--simulate", "5s", "-vv")
    stamped = [line for line in result.stderr.splitlines() if line[:1].isdigit()]
    assert stamped and all(re.match(r"2024-01-01T00:00:0\d\.\d{3}Z ", line) for line in stamped)
