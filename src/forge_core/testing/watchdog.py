"""A process-wide watchdog: test servers die with the test process that started them, however it dies.

A server's own stop runs in a fixture or at interpreter exit; when pytest is SIGKILLed (a CI timeout,
an OOM kill, ``kill -9``) neither runs and the servers would live on, holding their ports and CPU.
``prctl(PR_SET_PDEATHSIG)`` is no answer: it fires when the *thread* that forked exits, not the process.

So each process that starts servers has one watcher (:mod:`forge_core.testing.watchdog_main`, started on
first use in a session of its own) reading a pipe whose write end only this process holds. :func:`guard`
tells it a server's process group, :func:`release` that the server was stopped; :func:`guard_dir` and
:func:`release_dir` do the same for its temp dir. When this process ends, the kernel closes the write
end, the watcher reads end of file, SIGKILLs every group still guarded and removes every dir.
Every :class:`~forge_core.testing.ServerProcess` goes through here.

Looked at first: pytest-xprocess keeps servers alive across runs on purpose; mirakuru, testing.postgresql
and pytest-kafka stop theirs from ``atexit``/signal handlers, which a SIGKILL skips; CaoE forks the
*test process* itself and polls its parent. None watches for the owner's death with a pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forge_core.errors import ForgeError
from forge_core.testing.watchdog_main import start_time

__all__ = [
    "WatchdogError", "guard", "guard_dir", "guarded", "guarded_dirs", "release", "release_dir", "watched_popen",
    "watcher_pid",
]

_MAIN = Path(__file__).with_name("watchdog_main.py")


class WatchdogError(ForgeError):
    """The watchdog process could not be started or kept running."""


class _Watcher:
    """This process's watcher: its pid, the pipe's write end and what it guards."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.fd: int | None = None
        self.guarded: dict[int, dict[str, Any]] = {}  # leader pid -> its guard message
        self.dirs: set[str] = set()

    def send(self, message: dict[str, Any]) -> None:
        line = (json.dumps(message) + "\n").encode()
        if self.fd is not None:
            try:
                os.write(self.fd, line)  # one short write: atomic on a pipe
                return
            except OSError:  # the watcher was killed (EPIPE): start another, which is told everything
                pass
        self.spawn()

    def spawn(self) -> None:
        """Start a watcher (after closing a dead one's pipe) and tell it every group guarded now."""
        self.close()
        read_fd, write_fd = os.pipe()  # both ends close-on-exec: no server or other child inherits them
        # stdin: the pipe; stdout: nothing (a caller reading ours to its end must not wait for the watcher);
        # stderr: ours, for its traceback if it ever fails
        actions = [(os.POSIX_SPAWN_DUP2, read_fd, 0), (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
        try:
            self.pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", str(_MAIN)], os.environ, file_actions=actions, setsid=True
            )
        except OSError as exc:
            os.close(write_fd)
            raise WatchdogError(f"forge_core.testing.watchdog: cannot start {sys.executable} {_MAIN}: {exc}") from exc
        finally:
            os.close(read_fd)
        self.fd = write_fd
        messages = [*self.guarded.values(), *({"guard_dir": path} for path in self.dirs)]
        backlog = b"".join((json.dumps(m) + "\n").encode() for m in messages)
        try:
            while backlog:
                backlog = backlog[os.write(write_fd, backlog) :]
        except OSError as exc:
            raise WatchdogError(
                f"forge_core.testing.watchdog: the watcher (pid {self.pid}) exited at start: "
                f"{exc}; servers would outlive a killed test run"
            ) from exc

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)  # reap a watcher that was killed
            self.pid = None


_watcher = _Watcher()


def _forget_in_child() -> None:
    """A forked child must not hold the write end (the parent's death would go unseen while it lives)
    nor speak for the parent's servers; it starts a watcher of its own if it starts servers."""
    global _watcher
    if _watcher.fd is not None:
        with contextlib.suppress(OSError):
            os.close(_watcher.fd)
    _watcher = _Watcher()  # also a fresh lock: another thread may have held the old one at the fork


os.register_at_fork(after_in_child=_forget_in_child)


def guard(pid: int) -> None:
    """If this process dies before :func:`release` (``pid``), SIGKILL process group ``pid`` (start the
    server with ``start_new_session=True``, so it leads one) and every descendant of ``pid``."""
    message = {"guard": pid, "started": start_time(pid)}
    with _watcher.lock:
        _watcher.guarded[pid] = message
        _watcher.send(message)


def release(pid: int) -> None:
    """Process ``pid`` was stopped and waited for: stop guarding its group."""
    with _watcher.lock:
        if _watcher.guarded.pop(pid, None) is not None and _watcher.fd is not None:
            _watcher.send({"release": pid})


def guard_dir(path: Path) -> None:
    """If this process dies before :func:`release_dir` (``path``), remove the directory ``path`` (after
    the guarded servers were killed)."""
    with _watcher.lock:
        _watcher.dirs.add(str(path))
        _watcher.send({"guard_dir": str(path)})


def release_dir(path: Path) -> None:
    """The directory ``path`` was removed (or is to be kept): stop guarding it."""
    with _watcher.lock:
        if str(path) in _watcher.dirs:
            _watcher.dirs.discard(str(path))
            if _watcher.fd is not None:
                _watcher.send({"release_dir": str(path)})


def guarded_dirs() -> list[Path]:
    """The directories guarded now."""
    return [Path(p) for p in _watcher.dirs]


def guarded() -> list[int]:
    """The process groups guarded now."""
    return list(_watcher.guarded)


def watcher_pid() -> int | None:
    """The pid of this process's watcher, None before the first :func:`guard` or :func:`guard_dir`."""
    return _watcher.pid


def watched_popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` in a session of its own, guarded: if this process dies first, the
    watcher SIGKILLs it and its descendants. For the plants and peers a test starts itself (test servers go
    through :class:`~forge_core.testing.ServerProcess`). Signal it as usual (``send_signal``, ``kill``); a
    Ctrl-C at the terminal no longer reaches it, only this process. The guard stays until this process ends:
    a child that ended by then is not there to kill, and its pid, if reused, is told apart by start time."""
    proc = subprocess.Popen(args, start_new_session=True, **kwargs)
    try:
        guard(proc.pid)
    except BaseException:  # unwatched, it would outlive a killed test run: not left running
        proc.kill()
        proc.wait()
        raise
    return proc
