"""The watchdog's own process: kills the test servers of a test process that died without stopping them.

:mod:`forge_core.testing.watchdog` starts this file as ``python -I -S watchdog_main.py`` in a session of
its own, with the read end of a pipe as stdin; only the test process holds the write end. It reads one
JSON line per message (``{"guard": pid, "started": ticks}`` and ``{"release": pid}`` for a server's
process group, ``{"guard_dir": path}`` and ``{"release_dir": path}`` for its temp dir) until end of file,
which the kernel delivers when the last write end closes: when the test process exits, however it
died (SIGKILL, an OOM kill, a CI timeout). Then every process group still guarded is SIGKILLed, with
the leader's descendants, and every directory still guarded is removed. A clean exit has released
everything by then, so this does nothing.

Standard library only and no project import: it starts in a few milliseconds and cannot fail on an
import of the code under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

__all__ = ["Guarded", "descendants", "ended", "kill_group", "main", "start_time"]


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, field 22 of ``/proc/PID/stat``); None if there is no
    such process (or no /proc). With the pid it names one process: a pid can be reused, a start time not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or ")": split after the last one
    return int(stat.rsplit(")", 1)[1].split()[19])


def _stat_fields(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, theirs...), from /proc; [] without /proc."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            fields = _stat_fields(entry) if entry.isdigit() else []
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill_group(pgid: int, started: int | None) -> bool:
    """SIGKILL process group ``pgid`` (a server started in a session of its own leads its group) and the
    leader's descendants, which may have left the group (PostgreSQL's workers each call setsid); True if
    the group was signalled.

    Not if the leader's pid now belongs to another process (another start time): Linux hands out no
    pid that is still some group's id, so a reused pid means our group is already gone."""
    now = start_time(pgid)
    if now is not None and started is not None and now != started:
        return False
    signalled = False
    below = descendants(pgid) if now is not None else []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
        signalled = True
    for pid in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return signalled


def ended(pid: int) -> bool:
    """``pid`` is gone, or a zombie whose threads have all exited (a zombie leader can wait for them)."""
    fields = _stat_fields(str(pid))
    if not fields:
        return True
    try:
        return fields[0] == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


class Guarded:
    """What the messages read so far leave guarded: process groups (by leader pid) and directories."""

    def __init__(self) -> None:
        self.groups: dict[int, int | None] = {}  # leader pid -> its start time
        self.dirs: set[str] = set()

    def apply(self, message: dict[str, Any]) -> None:
        if "guard" in message:
            self.groups[int(message["guard"])] = message.get("started")
        elif "release" in message:
            self.groups.pop(int(message["release"]), None)
        elif "guard_dir" in message:
            self.dirs.add(str(message["guard_dir"]))
        else:
            self.dirs.discard(str(message["release_dir"]))

    def read(self, fd: int) -> None:
        """Apply the messages read from ``fd`` (one JSON object a line) until end of file."""
        pending = b""
        while chunk := os.read(fd, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.apply(json.loads(line))

    def clean_up(self, settle: float = 5.0) -> None:
        """Kill every group, give the killed up to ``settle`` seconds to end (a dying server can still
        write into its directory), then remove every directory."""
        killed = [pgid for pgid, started in self.groups.items() if kill_group(pgid, started)]
        deadline = time.monotonic() + settle
        while not all(ended(pgid) for pgid in killed) and time.monotonic() < deadline:
            time.sleep(0.01)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    # Only the end of the pipe ends this process: a Ctrl-C, a hang-up or a SIGTERM sent to every
    # process of a timed-out job must not take the watchdog out before the test process it watches.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    guarded = Guarded()
    guarded.read(0)
    guarded.clean_up()


if __name__ == "__main__":
    main()
