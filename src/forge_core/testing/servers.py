"""The base class of real test servers and its helpers: free ports, binaries, readiness.

Forge's principle is "real parts where a user would use them": integration tests talk to the
real server binaries from Debian, bound to 127.0.0.1 on a free port, with all state in a temp
dir that is removed on stop. Every server is a context manager; ``stop()``/``start()`` (and
``kill()``/``restart()``) keep the same port so outage tests can reconnect.

Core's own servers are :class:`~forge_core.testing.postgres.PostgresServer` and
:class:`~forge_core.testing.redis.RedisServer` (import both from :mod:`forge_core.testing`).
Transport plugins ship their broker's server in their own ``testing`` module, built on
:class:`ServerProcess` (``forge_mqtt.testing.MosquittoServer``, ``forge_kafka.testing.KafkaServer``:
Tansu). ``scripts/servers.py`` starts core's and the plugins' servers together for a distributed plant.

Missing binaries: :func:`which_or_skip` skips the test with the Debian package to install, or
fails it when the ``CI`` environment variable is set (CI must never silently skip).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Self

from forge_core.errors import ForgeError
from forge_core.testing import watchdog

__all__ = [
    "LOCALHOST",
    "ServerError",
    "ServerProcess",
    "ServerUnavailable",
    "find_binary",
    "find_free_port",
    "port_open",
    "which_or_skip",
]

LOCALHOST = "127.0.0.1"

# Which Debian package provides each binary, for the "install it" hint.
_DEBIAN_PACKAGES: dict[str, str] = {
    "initdb": "postgresql-15",
    "pg_ctl": "postgresql-15",
    "postgres": "postgresql-15",
    "pg_isready": "postgresql-client-15",
    "psql": "postgresql-client-15",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "mosquitto_sub": "mosquitto-clients",
}

# Debian keeps some server binaries off a normal user's PATH.
_EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"]


class ServerError(ForgeError):
    """A test server failed to start or stop; the message carries the server's log tail."""


class ServerUnavailable(ForgeError):
    """A server binary is not installed (raised when pytest is not available to skip)."""


#: Where :func:`find_free_port` looks first: below the kernel's ephemeral range (Linux's default
#: starts at 32768), above the well-known servers' ports.
_FIXED_PORTS_FROM = 20000
_handed_out: set[int] = set()  # this process's earlier answers: two servers of one test never share one
_port_draw = random.Random()  # seeded from the OS: processes started together draw differently


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for clients' source ports (Linux's file; its default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def find_free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (a tiny race remains), not handed out before in this
    process, and below the kernel's ephemeral range when there is room there.

    Not an ephemeral port because a client can take one as its own source port: a client retrying a
    connect to a local server that is not listening yet can connect to itself (TCP simultaneous open)
    and then holds the port the server fails to bind. Seen in CI: an OPC UA source retrying its
    simulator's port, "address already in use" at the simulator's start."""
    low, _ = _ephemeral_range()
    if low - _FIXED_PORTS_FROM >= 1000:
        for _ in range(200):
            port = _port_draw.randrange(_FIXED_PORTS_FROM, low)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    while True:  # no room below the range (or all taken): the OS picks, as before
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def find_binary(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    pg_dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for d in [*map(str, pg_dirs), *_EXTRA_DIRS]:
        candidate = Path(d) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def which_or_skip(binary: str) -> str:
    """Path of ``binary``; if missing, skip the test naming the Debian package (fail under CI)."""
    found = find_binary(binary)
    if found:
        return found
    package = _DEBIAN_PACKAGES.get(binary, binary)
    message = (
        f"{binary!r} not found on PATH: install the Debian package {package!r} (apt-get install {package})"
    )
    try:
        import pytest
    except ImportError:  # used outside a test run
        raise ServerUnavailable(message) from None
    if os.environ.get("CI"):
        pytest.fail(f"{message} [CI is set, so this fails instead of skipping]", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pragma: no cover - pytest.skip raises


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = LOCALHOST) -> bool:
    """Nothing listens on ``port`` and a new server could bind it (servers use SO_REUSEADDR, as
    here): what a stopped server must leave behind."""
    if port_open(host, port, timeout=0.5):
        return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


# Servers still running at interpreter exit are stopped gracefully; if the process is killed instead,
# the watchdog (forge_core.testing.watchdog) kills them.
_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close()


class ServerProcess:
    """Common life cycle: temp dir, one child process, log file, readiness wait, clean stop."""

    name = "server"
    binary = ""
    start_timeout = 30.0
    stop_signal = signal.SIGTERM

    def __init__(self, *, port: int | None = None, base_dir: Path | None = None) -> None:
        self.host = LOCALHOST
        self._fixed_port = port is not None
        self.port = port if port is not None else find_free_port()
        self._own_dir = base_dir is None
        self.dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix=f"forge-{self.name}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        if self._own_dir:  # removed by close(), or by the watchdog if this process dies first
            watchdog.guard_dir(self.dir)
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._closed = False

    # -- to override -------------------------------------------------------------------------
    def _prepare(self) -> None:
        """One-time setup before the first start (config files, initdb)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _is_ready(self) -> bool:
        return port_open(self.host, self.port)

    # -- life cycle --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def start(self) -> Self:
        """Start (or restart) the server on its port and wait until it accepts connections."""
        if self._closed:
            raise ServerError(f"{self.name} server was closed; create a new one")
        if self.running:
            return self
        if not getattr(self, "_prepared", False):
            self._prepare()
            self._prepared = True
        # A free port can be taken between find_free_port() and bind: retry on a new one,
        # unless the caller asked for this port or this is a restart (clients expect the port).
        attempts = 1 if (self._fixed_port or getattr(self, "_started_once", False)) else 3
        for attempt in range(attempts):
            try:
                self._spawn_and_wait()
                break
            except ServerError:
                if attempt == attempts - 1 or port_open(self.host, self.port) is False:
                    raise
                self.port = find_free_port()
                self._on_port_change()
        self._started_once = True
        _LIVE.add(self)
        return self

    def _on_port_change(self) -> None:
        """Rewrite anything that embeds the port (config files)."""

    def _spawn_and_wait(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,  # a Ctrl-C in the test run does not hit the server first
                **self._popen_kwargs(),
            )
        # If this process dies before stop() (SIGKILL, a CI timeout), the watchdog kills the server.
        try:
            watchdog.guard(self.proc.pid)
        except watchdog.WatchdogError:
            self._terminate(signal.SIGKILL)  # unwatched, it could outlive a killed test run
            raise
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                watchdog.release(self.proc.pid)
                self.proc = None
                raise ServerError(
                    f"{self.name} exited with code {code} while starting on {self.host}:{self.port}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self._is_ready():
                return
            time.sleep(0.05)
        self._terminate(signal.SIGKILL)
        raise ServerError(
            f"{self.name} not ready on {self.host}:{self.port} after {self.start_timeout:.0f}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def _terminate(self, sig: int, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)
        watchdog.release(proc.pid)
        self.proc = None
        self._wait_port_closed()

    def _wait_port_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.host, self.port, 0.05) and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop gracefully; state in the temp dir survives for a later :meth:`start`."""
        self._terminate(self.stop_signal)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and delete the temp dir. Idempotent."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        _LIVE.discard(self)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            watchdog.release_dir(self.dir)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state} dir={self.dir}>"
