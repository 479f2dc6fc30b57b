"""Multi-process runner: every component instance in its own OS process, supervised by the parent.

``forge run PATH`` with ``runtime: {processes: per_component}`` (usually set in a profile) starts
one child per component instance — ``forge run PATH --only machine-1 --json`` — so a crash, a
SIGKILL or a frozen process takes exactly one instance down, as it would on separate hosts. The
parent restarts a child that exits on its own with the same :class:`RestartPolicy` as the
in-process supervisor (its :class:`~forge_core.tactics.Backoff` and
:class:`~forge_core.tactics.CrashLoopWindow`: doubling backoff; more than ``max_restarts`` exits
within ``window`` is a crash loop: ``failed``, no more restarts). SIGINT/SIGTERM to the parent sends SIGTERM to every
child, waits ``stop_timeout``, SIGKILLs what is left, and merges the children's ``--json``
summaries into one :class:`RunSummary`. One child, its lives and its restarts:
:mod:`forge_core.runtime.child_process`.

Components named in ``runtime.in_parent`` (e.g. chaos) run in the parent's own runtime, whose
``kill``/``revive`` reach the children: ``kill`` is a real SIGKILL (no stop, no lease release,
the broker sends the Last Will), ``revive`` starts a fresh process.

Each child gets its own data dir (``<plant>/.forge/processes/<instance>``: outboxes, MQTT session
numbers) and ``FORGE_INSTANCE=<instance>`` in its environment, for per-process client ids
(``client_id: pasta-${env:FORGE_INSTANCE:-main}``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.errors import ForgeError
from forge_core.manifest.metrics import METRICS_ENV, TARGETS_ENV, parse_listen
from forge_core.manifest.model import instance_names as model_instance_names
from forge_core.runtime.child_process import ChildProcess, Life, read_summary
from forge_core.runtime.dead_letter_sinks import accounting_check, merge_accounting
from forge_core.runtime.summary import Check, RunSummary, not_run
from forge_core.runtime.supervisor import FAILED, KILLED, STOPPED, RestartPolicy
from forge_core.runtime.waiting import wait_for_stop

if TYPE_CHECKING:
    from forge_core.manifest import Manifest
    from forge_core.plugins import Plugins
    from forge_core.runtime.runtime import Runtime

log = logging.getLogger("forge.runtime.processes")

# ChildProcess and Life lived here before they had a module of their own; importable from here still.
__all__ = ["INSTANCE_ENV", "ChildProcess", "Life", "ProcessRunner", "instance_names", "read_summary"]

INSTANCE_ENV = "FORGE_INSTANCE"
def instance_names(manifest: Manifest, components: list[str]) -> list[str]:
    """``machine-0``, ``machine-1``, ... for replicated components, the bare name otherwise."""
    return [inst for name in components for inst in model_instance_names(name, manifest.components[name].replicas)]


class ProcessRunner:
    """The parent of a multi-process plant: its children, and a runtime for ``runtime.in_parent``."""

    def __init__(
        self,
        manifest: Manifest,
        plugins: Plugins,
        *,
        plant_path: Path,
        profile: str | None = None,
        seed: int | None = None,
        run_dir: Path | None = None,
        stop_timeout: float = 15.0,
        python: str = sys.executable,
    ) -> None:
        self.manifest = manifest
        self.plugins = plugins
        self.profile = profile
        self.seed = seed
        self.stop_timeout = stop_timeout
        unknown = [n for n in manifest.runtime.in_parent if n not in manifest.components]
        if unknown:
            raise ForgeError(f"runtime.in_parent of plant {manifest.name!r} names {', '.join(map(repr, unknown))}, "
                             f"not components; components: {', '.join(manifest.components)}")
        self.run_dir = run_dir or manifest.plant_dir / ".forge" / "processes"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rs = manifest.runtime
        policy = RestartPolicy(rs.initial_backoff, rs.max_backoff, rs.max_restarts, rs.window)
        in_children = [n for n in manifest.components if n not in rs.in_parent]
        self.children: dict[str, ChildProcess] = {}
        for name in instance_names(manifest, in_children):
            argv = [python, "-m", "forge_core.cli", "run", str(plant_path), "--only", name, "--json",
                    "--data-dir", str(self.run_dir / name)]
            if profile:
                argv += ["--profile", profile]
            if seed is not None:
                argv += ["--seed", str(seed)]
            env = {**os.environ, INSTANCE_ENV: name, "PYTHONUNBUFFERED": "1"}
            listen = manifest.runtime.metrics.listen if manifest.runtime.metrics.enabled else None
            if listen is not None:  # each child its own /metrics on its own HTTP port (runtime.http.ports) or a
                # free one, listed for Prometheus' file_sd
                env.update({METRICS_ENV: f"{parse_listen(listen)[0] or rs.http_host}:{rs.http_ports.get(name, 0)}",
                            TARGETS_ENV: str(self.run_dir / f"metrics-{name}.json")})
            self.children[name] = ChildProcess(name, argv, env, self.run_dir, policy)
        self.runtime: Runtime | None = None
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._start_wall = 0.0

    def request_stop(self, reason: str = "requested") -> None:
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    async def start(self) -> None:
        """Migrate storage once (children then find it at head), start the children, then the parent's
        own components (their kill/revive reach the children). Idempotent."""
        from forge_core.runtime.runtime import Runtime

        if self.runtime is not None:
            return
        self._start_wall = time.perf_counter()
        self.plugins.collect()
        in_parent = self.manifest.runtime.in_parent
        self.runtime = Runtime(self.manifest, self.plugins, seed=self.seed, only=in_parent or None,
                               data_dir=self.run_dir / "parent")
        if not in_parent:
            self.runtime.only = []
        self.runtime.children = dict(self.children)
        if self.manifest.storage.migrate_on_start:
            await asyncio.to_thread(self.runtime.storage)
        for child in self.children.values():
            child.launch()
        deadline = time.monotonic() + 30.0
        while any(not c.lives for c in self.children.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # every child spawned (has a pid) before the parent's components start
        if in_parent:
            await self.runtime.start()
        log.info("started %d child processes: %s", len(self.children),
                 ", ".join(f"{c.name} (pid {c.pid})" for c in self.children.values()))

    async def run(self, duration: float | None = None) -> RunSummary:
        try:
            await self.start()
            if await wait_for_stop(self._stop, duration):
                self._stop_reason = self._stop_reason or f"duration {duration:g}s reached"
        finally:
            summary = await self.stop()
        return summary

    async def stop(self) -> RunSummary:
        """Parent components first (chaos stops killing), then every child at once."""
        parent = None
        if self.runtime is not None and self.runtime.only:
            parent = await self.runtime.stop()
        await asyncio.gather(*(c.stop(self.stop_timeout) for c in self.children.values()))
        if self.runtime is not None and self.runtime._engine is not None:
            self.runtime._engine.dispose()
        return self.summary(parent)

    def _killed_checks(self, parts: list[tuple[str, dict[str, Any]]]) -> list[Check]:
        """A life that was SIGKILLed wrote no summary: each check it would have reported is listed as
        "not run: killed at <time>", never silently absent. Its names come from the instance's clean
        lives, else from a sibling replica's (machine-1's for machine-0), else one "checks" entry."""
        names: dict[str, list[str]] = {}
        for source, data in parts:
            for c in data.get("checks", []):
                component = c.get("component") or source
                names.setdefault(component, [])
                if c["name"] not in names[component]:
                    names[component].append(c["name"])
        checks: list[Check] = []
        for name, child in self.children.items():
            group = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
            known = names.get(name) or next((v for k, v in names.items()
                                             if k != name and k.rsplit("-", 1)[0] == group), None) or ["checks"]
            for index, life in enumerate(child.lives):
                if life.code != -signal.SIGKILL or read_summary(life) is not None:
                    continue
                at = life.killed_at or life.ended or time.time()
                by = "by the parent (chaos)" if life.killed_at else "by SIGKILL from outside"
                checks += [not_run(check, name, at, f"life {index}, pid {life.pid}, killed {by}")
                           for check in known]
        return checks

    def summary(self, parent: RunSummary | None) -> RunSummary:
        """One summary over every child's last clean life and the parent's own runtime."""
        total = RunSummary(plant=self.manifest.name, profile=self.manifest.profile, clock="real", seed=self.seed,
                           duration=time.perf_counter() - self._start_wall,
                           wall_seconds=time.perf_counter() - self._start_wall, stop_reason=self._stop_reason)
        published: Counter[str] = Counter()
        handled: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        parts = [("parent", parent.to_dict())] if parent is not None else []
        processes: dict[str, Any] = {}
        unclean: list[str] = []
        early: list[str] = []
        for name, child in self.children.items():
            found = child.summaries()
            parts += [(name, s) for s in found]
            last = found[-1] if found else None
            inner = (last or {}).get("components", {}).get(name)
            state = child.state if child.state in (FAILED, KILLED) else (inner or "no summary")
            total.components[name] = state
            restarts = child.restarts + sum(s.get("restarts", {}).get(name, 0) for s in found)
            if restarts:
                total.restarts[name] = restarts
            if child.kills:
                total.kills[name] = child.kills
            if child.state == STOPPED and child.lives and read_summary(child.lives[-1]) is None:
                # -SIGTERM: stopped while still starting (Python's default handler; the runtime's was not
                # installed yet) - a revive shortly before the end, not a fault
                (early if child.lives[-1].code == -signal.SIGTERM else unclean).append(name)
            processes[name] = {"lives": len(child.lives), "kills": child.kills, "crash_restarts": child.restarts,
                               "pids": [life.pid for life in child.lives],
                               "exit_codes": [life.code for life in child.lives], "last_error": child.last_error,
                               "log": str(child.log_path)}
        for source, data in parts:
            published.update(data.get("published", {}))
            handled.update(data.get("handled", {}))
            dead.update(data.get("dead_letters", {}))
            total.forwarded += int(data.get("forwarded", 0))
            total.reports.update(data.get("reports", {}))
            for c in data.get("checks", []):  # only clean ends write a summary: in practice each child's last life
                total.checks.append(Check(c["name"], bool(c["passed"]), c.get("detail", ""),
                                          c.get("component") or source))
        if parent is not None:
            total.components.update(parent.components)
            total.restarts.update(parent.restarts)
            total.kills.update(parent.kills)
        total.published, total.handled = dict(sorted(published.items())), dict(sorted(handled.items()))
        total.dead_letters = dict(sorted(dead.items()))
        detail = f"without: {', '.join(unclean)}" if unclean else f"{len(self.children)} processes"
        if early:
            detail += f"; stopped while starting: {', '.join(early)}"
        total.checks.append(Check("every child process stopped with a summary", not unclean, detail, "processes"))
        total.checks += self._killed_checks(parts)
        total.extra["processes"] = processes
        letters = [(source, data["extra"]["dead_letters"]) for source, data in parts
                   if data.get("extra", {}).get("dead_letters")]
        if letters:  # every process's dead letters, summed: accounted for over the whole plant (issue 11 §3)
            lives = sum(len(child.lives) for child in self.children.values())
            summarised = sum(1 for source, _ in parts if source in self.children)
            total.extra["dead_letters"] = merge_accounting(letters, lives_without_summary=lives - summarised)
            total.checks.append(accounting_check(letters))
        total.checks += self.plugins.plant_checks(total)  # after the merge: they count across processes
        return total

