"""A test process killed with SIGKILL takes its servers with it: the watchdog kills their process groups.

Each test runs the "test process" as a child Python process, SIGKILLs it, and looks at what it left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from forge_core.testing import RedisServer, port_free, watchdog
from forge_core.testing.watchdog_main import descendants

pytestmark = pytest.mark.servers


def _state(pid: int) -> str | None:
    """The process's state letter (``Z`` for a zombie no one reaped yet), None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _gone(pid: int) -> bool:
    return _state(pid) in (None, "Z")  # a zombie holds no port and runs nothing


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _wait_gone(pid: int) -> bool:
    return _wait_until(lambda: _gone(pid))


def _run_owner(code: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``code`` as the owner process; return it and the words of the first line it prints."""
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    line = owner.stdout.readline()
    assert line, f"the owner process printed nothing (exit code {owner.wait()})"
    return owner, line.split()


def _kill(owner: subprocess.Popen[str]) -> None:
    owner.send_signal(signal.SIGKILL)
    owner.wait()


@pytest.mark.parametrize("kind", ["RedisServer", "PostgresServer"])
def test_a_killed_test_process_takes_its_server_and_its_children_with_it(kind: str) -> None:
    """PostgreSQL forks its own workers (each in a session of its own): all go, the port is freed and the
    temp dir removed."""
    owner, (port, pid, watcher, directory) = _run_owner(f"""
        import time
        from forge_core.testing import {kind}, watchdog
        server = {kind}().start()
        print(server.port, server.proc.pid, watchdog.watcher_pid(), server.dir, flush=True)
        time.sleep(600)
    """)
    group = [int(pid), *descendants(int(pid))]
    try:
        assert not port_free(int(port))
        _kill(owner)
        assert all(_wait_gone(p) for p in group), [(p, _state(p)) for p in group]
        assert _wait_gone(int(watcher))
        # a zombie leader may still have threads closing (Redis's I/O threads): the port is freed with the last
        assert _wait_until(lambda: port_free(int(port)))
        assert not Path(directory).exists()
    finally:
        _kill(owner)
        for p in group:
            _signal_group(p)
    if kind == "PostgresServer":
        assert len(group) > 1  # postmaster and its workers


def test_a_killed_test_process_takes_the_plant_it_started_with_it() -> None:
    """watched_popen: a child the test starts itself (a plant, a peer) and the child's own children."""
    owner, (child, grandchild) = _run_owner(f"""
        import subprocess, sys, time
        from forge_core.testing import watchdog
        code = "import subprocess, time; print({_SLEEPER}, flush=True); time.sleep(600)"
        plant = watchdog.watched_popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        print(plant.pid, plant.stdout.readline().strip(), flush=True)
        time.sleep(600)
    """)
    try:
        assert not _gone(int(child)) and not _gone(int(grandchild))
        _kill(owner)
        assert _wait_gone(int(child)) and _wait_gone(int(grandchild)), (_state(int(child)), _state(int(grandchild)))
    finally:
        _kill(owner)
        for p in (int(child), int(grandchild)):
            _signal_group(p)


def _signal_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


_SLEEPER = "subprocess.Popen(['sleep', '600'], start_new_session=True).pid"


_HOLDING_TEST = """
import os, time
def test_hold(redis_server, postgres_server):
    lines = [f"{s.proc.pid} {s.port} {s.dir}" for s in (redis_server, postgres_server)]
    with open("servers.part", "w") as listing:
        listing.write("\\n".join(lines))
    os.rename("servers.part", "servers")  # whole, or not there
    time.sleep(600)
"""


def test_a_killed_pytest_run_leaks_no_server(tmp_path: Path) -> None:
    """The case itself: pytest SIGKILLed in a test, its session fixtures' servers never closed."""
    (tmp_path / "test_hold.py").write_text(_HOLDING_TEST)
    listing = tmp_path / "servers"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hold.py"]
    run = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_until(listing.exists, timeout=120), "the pytest run started no servers"
        servers = [line.split() for line in listing.read_text().splitlines()]
        processes = [p for pid, _, _ in servers for p in (int(pid), *descendants(int(pid)))]
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert all(_wait_gone(p) for p in processes), [(p, _state(p)) for p in processes]
        ports = [int(port) for _, port, _ in servers]
        directories = [Path(directory) for _, _, directory in servers]
        assert _wait_until(lambda: all(port_free(port) for port in ports))
        assert _wait_until(lambda: not any(directory.exists() for directory in directories))
    finally:
        run.kill()
        run.wait()


def test_a_released_server_is_left_alone() -> None:
    owner, (pid, watcher) = _run_owner(f"""
        import subprocess, time
        from forge_core.testing import watchdog
        pid = {_SLEEPER}
        watchdog.guard(pid)
        watchdog.release(pid)
        assert watchdog.guarded() == []
        print(pid, watchdog.watcher_pid(), flush=True)
        time.sleep(600)
    """)
    try:
        _kill(owner)
        assert _wait_gone(int(watcher))  # it has read the end of file and done all it does
        assert not _gone(int(pid))
    finally:
        _kill(owner)
        _signal_group(int(pid))


def test_a_killed_watcher_is_replaced_and_told_every_server() -> None:
    owner, (first, second) = _run_owner(f"""
        import os, signal, subprocess, time
        from forge_core.testing import watchdog
        first = {_SLEEPER}
        watchdog.guard(first)
        old = watchdog.watcher_pid()
        os.kill(old, signal.SIGKILL)
        os.waitpid(old, 0)
        second = {_SLEEPER}
        watchdog.guard(second)
        assert watchdog.watcher_pid() not in (None, old)
        print(first, second, flush=True)
        time.sleep(600)
    """)
    try:
        _kill(owner)
        assert _wait_gone(int(first)) and _wait_gone(int(second))
    finally:
        _kill(owner)
        _signal_group(int(first))
        _signal_group(int(second))


def test_a_forked_child_does_not_keep_the_owners_servers_alive() -> None:
    """A fork (multiprocessing) gets a copy of the pipe's write end; the watchdog closes it in the child,
    so the owner's death is seen while the fork lives on."""
    owner, (pid, fork) = _run_owner(f"""
        import os, subprocess, time
        from forge_core.testing import watchdog
        pid = {_SLEEPER}
        watchdog.guard(pid)
        fork = os.fork()
        if fork == 0:
            assert watchdog.guarded() == [] and watchdog.watcher_pid() is None
            time.sleep(600)
            os._exit(0)
        print(pid, fork, flush=True)
        time.sleep(600)
    """)
    try:
        _kill(owner)
        assert _wait_gone(int(pid))
        assert not _gone(int(fork))
    finally:
        _kill(owner)
        _signal_group(int(pid))
        os.kill(int(fork), signal.SIGKILL)


def test_a_stopped_servers_directory_goes_too() -> None:
    """Stopped but not closed when the process died: no process to kill, but its temp dir is removed."""
    owner, (directory,) = _run_owner("""
        import time
        from forge_core.testing import RedisServer, watchdog
        server = RedisServer().start()
        server.stop()
        assert watchdog.guarded() == [] and watchdog.guarded_dirs() == [server.dir]
        print(server.dir, flush=True)
        time.sleep(600)
    """)
    try:
        assert Path(directory).is_dir()
        _kill(owner)
        assert _wait_until(lambda: not Path(directory).exists())
    finally:
        _kill(owner)


def test_guard_and_release_in_this_process() -> None:
    sleeper = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        watchdog.guard(sleeper.pid)
        assert sleeper.pid in watchdog.guarded()
        assert watchdog.watcher_pid() is not None and not _gone(watchdog.watcher_pid() or 0)
        watchdog.release(sleeper.pid)
        assert sleeper.pid not in watchdog.guarded()
        watchdog.guard_dir(Path("/nonexistent/forge-test"))
        assert Path("/nonexistent/forge-test") in watchdog.guarded_dirs()
        watchdog.release_dir(Path("/nonexistent/forge-test"))
        assert Path("/nonexistent/forge-test") not in watchdog.guarded_dirs()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_server_the_watchdog_cannot_guard_is_not_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int) -> None:
        raise watchdog.WatchdogError("forge_core.testing.watchdog: cannot start (test)")

    server = RedisServer()
    monkeypatch.setattr(watchdog, "guard", refuse)
    try:
        with pytest.raises(watchdog.WatchdogError):
            server.start()
        assert server.proc is None
        assert _wait_until(lambda: port_free(server.port))
    finally:
        server.close()
