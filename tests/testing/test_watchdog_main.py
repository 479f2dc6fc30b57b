"""The watcher process: reads guard/release messages until end of file, then kills what is still guarded."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from forge_core.testing import watchdog_main
from forge_core.testing.watchdog_main import Guarded, descendants, ended, kill_group, start_time


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "600"], start_new_session=True)


def _running(pid: int) -> bool:
    """Not gone and not a zombie (the zombie of an orphan waits for pid 1 to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ignores(pid: int, sig: int) -> bool:
    """``sig`` is in the process's ignored-signals mask (``SigIgn`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def test_start_time_names_one_process() -> None:
    assert start_time(os.getpid()) == start_time(os.getpid())
    assert start_time(os.getpid()) is not None
    with _sleeper() as other:
        assert start_time(other.pid) is not None
        other.kill()
        other.wait()
    assert start_time(other.pid) is None


def test_kill_group_kills_the_group() -> None:
    with _sleeper() as server:
        assert kill_group(server.pid, start_time(server.pid))
        assert server.wait(timeout=5) == -signal.SIGKILL


def test_clean_up_kills_the_groups_before_removing_the_directories(tmp_path: Path) -> None:
    directory, released = tmp_path / "server", tmp_path / "closed"
    (directory / "data").mkdir(parents=True)
    released.mkdir()
    with _sleeper() as server:
        guarded = Guarded()
        for message in [{"guard": server.pid, "started": start_time(server.pid)}, {"guard_dir": str(directory)},
                        {"guard_dir": str(released)}, {"release_dir": str(released)}]:  # fmt: skip
            guarded.apply(message)
        guarded.clean_up()
        assert ended(server.pid)  # a zombie until we reap it: it ended before clean_up returned
        assert server.wait(timeout=5) == -signal.SIGKILL
    assert not directory.exists()
    assert released.exists()


def test_kill_group_leaves_a_reused_pid_alone() -> None:
    """Another start time under the leader's pid: the pid was reused, so the group is not ours."""
    with _sleeper() as other:
        try:
            assert not kill_group(other.pid, (start_time(other.pid) or 0) - 1)
            assert other.poll() is None
        finally:
            other.kill()


def test_read_applies_guard_and_release_messages() -> None:
    read_fd, write_fd = os.pipe()
    lines = [{"guard": 11, "started": 5}, {"guard": 12, "started": None}, {"release": 11}, {"release": 99},
             {"guard_dir": "/a"}, {"guard_dir": "/b"}, {"release_dir": "/a"}, {"release_dir": "/c"}]  # fmt: skip
    os.write(write_fd, "".join(json.dumps(m) + "\n" for m in lines).encode())
    os.close(write_fd)
    guarded = Guarded()
    try:
        guarded.read(read_fd)
    finally:
        os.close(read_fd)
    assert guarded.groups == {12: None}
    assert guarded.dirs == {"/b"}


def test_the_watcher_ignores_sigterm_and_kills_on_end_of_file() -> None:
    with _sleeper() as server:
        watcher = subprocess.Popen([sys.executable, "-I", "-S", watchdog_main.__file__], stdin=subprocess.PIPE)
        assert watcher.stdin is not None
        try:
            message = {"guard": server.pid, "started": start_time(server.pid)}
            watcher.stdin.write((json.dumps(message) + "\n").encode())
            watcher.stdin.flush()
            deadline = time.monotonic() + 30
            while not _ignores(watcher.pid, signal.SIGTERM):  # past its start-up
                alive = time.monotonic() < deadline and watcher.poll() is None
                assert alive, "the watcher did not start, or does not ignore SIGTERM"
                time.sleep(0.02)
            watcher.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # a signal it did not ignore would have ended it by now
            assert watcher.poll() is None and server.poll() is None
            watcher.stdin.close()  # what the kernel does when the test process dies
            assert watcher.wait(timeout=10) == 0
            assert server.wait(timeout=5) == -signal.SIGKILL
        finally:
            watcher.kill()
            server.kill()


def test_kill_group_kills_descendants_that_left_the_group() -> None:
    """As PostgreSQL's workers do: a child in a session of its own still goes with the server."""
    code = (
        "import subprocess, time; print(subprocess.Popen(['sleep', '600'], start_new_session=True).pid, "
        "flush=True); time.sleep(600)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True) as server:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        try:
            assert os.getpgid(child) != server.pid and child in descendants(server.pid)
            assert kill_group(server.pid, start_time(server.pid))
            assert server.wait(timeout=5) == -signal.SIGKILL
            deadline = time.monotonic() + 5
            while _running(child):
                assert time.monotonic() < deadline, "the child in its own session survived"
                time.sleep(0.02)
        finally:
            server.kill()
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
