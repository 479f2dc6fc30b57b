"""One component instance in its own OS process, as the multi-process runner's parent sees it.

:class:`ChildProcess` spawns ``forge run PATH --only <instance> --json``, watches it, restarts it
when it exits on its own with the in-process supervisor's :class:`RestartPolicy` (doubling backoff;
a crash loop is ``failed``), and can be SIGKILLed (chaos: no restart until revived), frozen and
stopped (SIGTERM, then SIGKILL after a timeout). Each OS process it started is a :class:`Life`,
whose ``--json`` summary :func:`read_summary` reads when it ended cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forge_core.errors import ForgeError
from forge_core.runtime.summary import iso_time
from forge_core.runtime.supervisor import FAILED, KILLED, RESTARTING, RUNNING, STARTING, STOPPED, RestartPolicy
from forge_core.tactics.retry import CrashLoopWindow

log = logging.getLogger("forge.runtime.processes")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so a SIGKILLed parent
    leaves no orphans holding leases and broker sessions."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Life:
    """One OS process of an instance."""

    pid: int
    started: float  # time.time()
    stdout: Path
    ended: float | None = None
    code: int | None = None
    how: str = ""  # "exit" | "killed" (chaos) | "stopped"
    killed_at: float | None = None  # time.time() the parent sent SIGKILL (chaos, runtime.kill)


@dataclass
class ChildProcess:
    """One component instance in its own OS process: spawn, watch, restart with backoff."""

    name: str
    argv: list[str]
    env: dict[str, str]
    run_dir: Path
    policy: RestartPolicy
    state: str = STARTING
    restarts: int = 0
    kills: int = 0
    last_error: str | None = None
    lives: list[Life] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    _crashes: CrashLoopWindow | None = None
    _stopping: bool = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def status(self) -> str:
        """The state a person is shown: ``stopping`` between the parent's SIGTERM and the exit."""
        return "stopping" if self._stopping and self.state == RUNNING else self.state

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def launch(self) -> asyncio.Task[None]:
        self.task = asyncio.ensure_future(self._supervise())
        self.task.set_name(f"process:{self.name}")
        return self.task

    async def _spawn(self) -> Life:
        stdout = self.run_dir / f"{self.name}.{len(self.lives)}.json"
        with open(stdout, "wb") as out, open(self.log_path, "ab") as err:
            err.write(f"--- {iso_time(time.time())} life {len(self.lives)}: {' '.join(self.argv)}\n".encode())
            err.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, env=self.env,
                start_new_session=True,  # a Ctrl-C on the terminal reaches the parent only; it stops the children
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        life = Life(self.proc.pid, time.time(), stdout)
        self.lives.append(life)
        return life

    async def _supervise(self) -> None:
        backoff = self.policy.backoff()
        if self._crashes is None:  # kept across revives, like the in-process supervisor's
            self._crashes = self.policy.crash_window()
        while not self._stopping:
            life = await self._spawn()
            self.state = RUNNING
            assert self.proc is not None
            code = await self.proc.wait()
            life.ended, life.code = time.time(), code
            if self.state == KILLED or self._stopping:
                life.how = "killed" if self.state == KILLED else "stopped"
                return
            life.how = "exit"
            self._crashes.record(time.monotonic())
            self.restarts += 1
            by = f" (signal {signal.Signals(-code).name})" if code < 0 else ""
            self.last_error = f"exited with code {code}{by}"
            gave_up = self._crashes.looping
            delay = 0.0 if gave_up else backoff.next()
            log.error("process %s (pid %d) %s; %s; log %s", self.name, life.pid, self.last_error,
                      "giving up, crash loop" if gave_up else f"restart in {delay:.1f}s", self.log_path)
            if gave_up:
                self.state = FAILED
                return
            self.state = RESTARTING
            deadline = time.monotonic() + delay
            while not self._stopping and time.monotonic() < deadline:
                await asyncio.sleep(min(0.1, deadline - time.monotonic()))

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the live process, if any (SIGSTOP/SIGCONT for freeze tests)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL the process, as a crash would; no restart until :meth:`revive`."""
        if self.state in (KILLED, FAILED, STOPPED):
            return
        self.state = KILLED
        self.kills += 1
        if self.lives and self.proc is not None and self.proc.returncode is None:
            self.lives[-1].killed_at = time.time()
        self.signal(signal.SIGKILL)
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    def revive(self) -> asyncio.Task[None]:
        """Start a killed instance again, as a new process."""
        if self.state != KILLED:
            raise ForgeError(f"process {self.name!r} is {self.state}, not killed")
        self.state = STARTING
        return self.launch()

    async def stop(self, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            self.signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
            self.signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await proc.wait()
            except TimeoutError:
                log.warning("process %s (pid %d) did not stop within %.0fs: SIGKILL", self.name, proc.pid, timeout)
                self.signal(signal.SIGKILL)
                await proc.wait()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.state not in (FAILED, KILLED):
            self.state = STOPPED

    def summaries(self) -> list[dict[str, Any]]:
        """The ``--json`` summaries of the lives that ended cleanly, oldest first."""
        return [s for s in map(read_summary, self.lives) if s is not None]


def read_summary(life: Life) -> dict[str, Any] | None:
    """What a life printed with ``--json`` (nothing when it was killed or crashed)."""
    try:
        text = life.stdout.read_text()
    except OSError:
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
