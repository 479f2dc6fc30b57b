"""What every drill of the sensor plant shares: the servers, the plant's processes, the database.

:class:`DrillHarness` starts a three-broker Apache Kafka cluster (``forge_kafka.cluster``),
PostgreSQL (``forge_core.testing``) and Mosquitto when the profile speaks MQTT, copies the plant's
manifest into the drill's work dir (so its ``.forge/`` data — sensor epochs, process logs — is the
drill's own), runs ``forge run PLANT --profile cluster --json`` as a subprocess (a process per
component instance), writes drill markers into ``system_events`` and stops the plant with SIGINT
as Ctrl-C would. Nothing here touches the processors: they are observed from outside only.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from forge_core import ForgeError

#: Files and folders of the plant directory a drill does not copy (code, tests, run data).
NOT_COPIED = {"src", "tests", ".forge", "__pycache__", ".pytest_cache"}


class DrillFailed(ForgeError):
    """The drill could not go on (a server did not start, the plant exited, a wait timed out)."""


class Timeline:
    """``(seconds since the drill began, what happened)``, also logged as it happens."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.events: list[tuple[float, str]] = []
        self.log = log

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def note(self, what: str) -> float:
        """Record ``what`` now; returns the wall-clock time (epoch seconds) of the note."""
        at = self.now()
        self.events.append((at, what))
        self.log(f"  [{at:6.1f}s] {what}")
        return time.time()


def effective_profile(plant_dir: Path, profile: str) -> dict[str, Any]:
    """The manifest with ``profiles.<profile>`` merged over it (dicts deep, everything else replaced),
    enough to read settings such as the Kafka session timeout; ``forge run`` does the real merge."""
    doc = yaml.safe_load((plant_dir / "plant.yaml").read_text())
    profiles = doc.get("profiles") or {}
    if profile not in profiles:
        raise DrillFailed(f"plant {plant_dir} has no profile {profile!r} (it has: {', '.join(profiles) or 'none'})")

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    return dict(merge({k: v for k, v in doc.items() if k != "profiles"}, profiles[profile] or {}))


def kafka_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """``settings`` of the manifest's first ``type: kafka`` transport (empty: none)."""
    for transport in (manifest.get("transports") or {}).values():
        if isinstance(transport, dict) and transport.get("type") == "kafka":
            return dict(transport.get("settings") or {})
    return {}


def uses_mqtt(manifest: dict[str, Any]) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "mqtt" for t in (manifest.get("transports") or {}).values())


def _stop_with_parent() -> None:
    """In the plant's ``forge run`` before exec: SIGINT when the drill dies (Linux), so a crashed drill
    leaves no plant behind (``forge run`` stops its own children)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG


def _unavailable(exc: BaseException) -> DrillFailed:
    return DrillFailed(f"a server the drill needs is not available here: {exc}")


def _guard_skip(exc: BaseException) -> None:
    """``which_or_skip`` skips a test when a server binary is missing; outside pytest that is an error."""
    if type(exc).__module__.startswith("_pytest") and not os.environ.get("PYTEST_CURRENT_TEST"):
        raise _unavailable(exc) from None


class DrillHarness:
    """Servers, the plant's ``forge run`` and its database for one drill; ``close()`` stops everything."""

    def __init__(self, plant_dir: Path, work_dir: Path | None, profile: str, timeline: Timeline, *,
                 database_url: str | None = None, seed: int = 14, broker_session_ms: int = 3000) -> None:
        self.source = plant_dir
        self.profile = profile
        self.timeline = timeline
        self.seed = seed
        self.broker_session_ms = broker_session_ms
        self._own_work = work_dir is None
        self.work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="forge-drill-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.plant = self.work / "plant"
        self.manifest = effective_profile(plant_dir, profile)
        self.kafka_settings = kafka_settings(self.manifest)
        self.database_url = database_url
        self.kafka: Any = None
        self.postgres: Any = None
        self.mqtt: Any = None
        self.engine: sa.Engine | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.frozen: set[int] = set()
        self.out_path = self.work / "run.json"
        self.err_path = self.work / "run.err"
        self.logs = self.plant / ".forge" / "processes"

    # -- servers -------------------------------------------------------------------------------
    def start_servers(self) -> None:
        from forge_kafka.cluster import KafkaCluster

        from forge_core.testing import PostgresServer, ServerUnavailable

        began = time.monotonic()
        try:
            if self.database_url is None:
                self.postgres = PostgresServer().start()  # its own temp dir: it must belong to user postgres
                self.database_url = self.postgres.url
            if uses_mqtt(self.manifest):
                from forge_mqtt.testing import MosquittoServer

                self.mqtt = MosquittoServer(base_dir=self.work / "mosquitto").start()
            self.kafka = KafkaCluster(3, base_dir=self.work / "kafka", broker_session_ms=self.broker_session_ms)
            self.kafka.start()
        except ServerUnavailable as exc:
            raise _unavailable(exc) from None
        except BaseException as exc:
            _guard_skip(exc)
            raise
        self.engine = sa.create_engine(self.database_url, pool_pre_ping=True)
        mqtt = f", Mosquitto :{self.mqtt.port}" if self.mqtt else ""
        self.timeline.note(f"servers up in {time.monotonic() - began:.0f}s: Kafka {self.kafka.bootstrap}, "
                           f"PostgreSQL{mqtt}")

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "KAFKA_BOOTSTRAP": self.kafka.bootstrap, "FORGE_DATABASE_URL": str(self.database_url),
               "PYTHONUNBUFFERED": "1"}
        if self.mqtt is not None:
            env.update(MQTT_HOST=self.mqtt.host, MQTT_PORT=str(self.mqtt.port))
        for name in ("FORGE_DISABLE_PLUGINS", "FORGE_LOAD_PLUGINS", "FORGE_DEBUG"):
            env.pop(name, None)
        return env

    # -- the plant -----------------------------------------------------------------------------
    def copy_plant(self, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        """The plant's manifest (and its data files) in the work dir; ``edit`` may change the manifest."""
        if self.plant.exists():
            shutil.rmtree(self.plant)
        self.plant.mkdir(parents=True)
        for item in self.source.iterdir():
            if item.name in NOT_COPIED or item.name.endswith(".egg-info"):
                continue
            if item.is_dir():
                shutil.copytree(item, self.plant / item.name)
            else:
                shutil.copy2(item, self.plant / item.name)
        if edit is not None:
            doc = yaml.safe_load((self.plant / "plant.yaml").read_text())
            edit(doc)
            (self.plant / "plant.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.plant

    def start_plant(self) -> None:
        if not self.plant.exists():
            self.copy_plant()
        argv = [sys.executable, "-m", "forge_core.cli", "run", str(self.plant), "--profile", self.profile,
                "--seed", str(self.seed), "--json"]
        from forge_core.testing import watched_popen

        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            # in a session of its own (a Ctrl-C at the terminal reaches us only); SIGINT if this thread dies
            # (a graceful stop), SIGKILL with its children by the test servers' watchdog if this process dies
            self.proc = watched_popen(argv, env=self.env, stdout=out, stderr=err, text=True,
                                      preexec_fn=_stop_with_parent)
        self.timeline.note(f"forge run {self.plant.name} --profile {self.profile} (pid {self.proc.pid})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.5) -> float:
        """Poll ``predicate`` until true; returns the seconds it took. Fails if the plant exits."""
        began = time.monotonic()
        while True:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                if predicate():
                    return time.monotonic() - began
            if self.proc is not None and self.proc.poll() is not None:
                raise DrillFailed(f"forge run exited ({self.proc.returncode}) while waiting for {what}; "
                                  f"stderr:\n{self.stderr_tail()}")
            if time.monotonic() - began > timeout:
                raise DrillFailed(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(every)

    def children(self) -> dict[str, int]:
        """Instance name -> pid of the plant's live child processes (``forge run ... --only NAME``)."""
        found: dict[str, int] = {}
        if self.proc is None:
            return found
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid and b"--only" in argv:
                found[argv[argv.index(b"--only") + 1].decode()] = int(entry.name)
        return found

    def signal_child(self, name: str, sig: int) -> int:
        pids = self.children()
        if name not in pids:
            raise DrillFailed(f"the plant has no live process {name!r} (it has: {', '.join(sorted(pids))})")
        os.kill(pids[name], sig)
        if sig == signal.SIGSTOP:
            self.frozen.add(pids[name])
        elif sig == signal.SIGCONT:
            self.frozen.discard(pids[name])
        return pids[name]

    def stop_plant(self, timeout: float = 120.0) -> dict[str, Any]:
        """SIGINT to ``forge run`` (as Ctrl-C); its merged ``--json`` summary."""
        self._thaw_all()
        if self.proc is None:
            raise DrillFailed("the plant was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise DrillFailed(f"forge run did not stop within {timeout:.0f}s of SIGINT") from None
        self.timeline.note(f"forge run exited {self.proc.returncode}")
        text = self.out_path.read_text()
        if "{" not in text:
            raise DrillFailed(f"forge run printed no summary (exit {self.proc.returncode}); stderr:\n"
                              f"{self.stderr_tail()}")
        summary: dict[str, Any] = json.loads(text[text.find("{"):])
        return summary

    def child_summaries(self) -> dict[str, list[dict[str, Any]]]:
        """Every clean life's own ``--json`` summary (``.forge/processes/<instance>.<life>.json``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(self.logs.glob("*.json")):
            text = path.read_text(errors="replace")
            if "{" in text:
                with contextlib.suppress(ValueError):
                    out.setdefault(path.stem.rsplit(".", 1)[0], []).append(json.loads(text[text.find("{"):]))
        return out

    def stderr_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.err_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _thaw_all(self) -> None:
        for pid in list(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen.clear()

    # -- the database --------------------------------------------------------------------------
    def db(self) -> sa.Engine:
        if self.engine is None:
            raise DrillFailed("the database is not up")
        return self.engine

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.db().connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def marker(self, kind: str, **detail: Any) -> float:
        """A ``system_events`` row (source ``drill``) at the current time; returns that time."""
        at = time.time()
        table = sa.Table("system_events", sa.MetaData(), autoload_with=self.db())
        with self.db().begin() as conn:
            conn.execute(table.insert().values(at=at, kind=kind, source="drill", detail=detail))
        return at

    # -- the end -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop whatever still runs: the plant (SIGINT, then SIGKILL), the servers; remove a temp work dir."""
        self._thaw_all()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.engine is not None:
            self.engine.dispose()
        for server in (self.kafka, self.mqtt, self.postgres):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.close()
        if self._own_work:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> DrillHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def frozen_process(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the ``with`` block, SIGCONT after (also on errors)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
