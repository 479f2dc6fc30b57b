"""The dashboard of one plant process: started after the runtime, stopped with it.

It mounts on the runtime's HTTP server (``runtime.http``, one port per process) unless it is
given a port of its own, then serves on a second :class:`~forge_core.serving.HttpHost`. Its
live tail subscribes on the runtime's transports; its SSE streams end when the plant starts
stopping (``forge_plant_stopping``), so the HTTP server is not held open by a page."""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.dashboard.settings import DashboardSettings
from forge_core.dashboard.snapshot import Collector
from forge_core.dashboard.stream import Broadcaster
from forge_core.dashboard.tail import MessageTail
from forge_core.hookspecs import hookimpl
from forge_core.serving import HttpHost

if TYPE_CHECKING:
    from forge_core.runtime.runtime import Runtime

log = logging.getLogger("forge.dashboard")
OWNER = "forge.dashboard"
URL_FILE = "dashboard.url"  # in the process's data dir: how the multi-process parent links a child's page
_ids = itertools.count()


class Dashboard:
    def __init__(self, runtime: Runtime, settings: DashboardSettings | None = None, *,
                 children_dir: Path | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or DashboardSettings()
        s = self.settings
        self.tail = MessageTail(runtime.clock, per_topic=s.tail_per_topic, topics=s.tail_topics,
                                per_second=s.tail_per_second)
        self.collector = Collector(runtime, self.tail, children_dir=children_dir)
        self.broadcaster = Broadcaster(self.collector.snapshot, s.interval)
        self.token: str | None = None
        self.url: str | None = None
        self._own_host: HttpHost | None = None
        #: the server the page is on (the runtime's or its own), for apps served beside it
        self.host: HttpHost | None = None
        self._hook_name = f"{OWNER}:{next(_ids)}"
        self._url_file: Path | None = None

    async def start(self) -> str:
        """Serve; returns the page's URL (``http://host:port/dashboard/``)."""
        from forge_core.dashboard.app import build_app  # Starlette only when a dashboard is served

        s, rt = self.settings, self.runtime
        self.token = os.environ.get(s.token_env) or None
        if s.actions and not self.token:
            log.warning("dashboard actions are enabled but %s is not set: every action will be refused", s.token_env)
        if s.tail:
            await self.tail.attach(rt.transports)
        app = build_app(self)
        host = rt.http
        if host is None or (s.port is not None and s.port != host.port) or not host.listen:
            host = self._own_host = HttpHost(s.host, s.port or 0, listen=True)
        await host.mount(s.path, app, owner=OWNER)
        self.host = host
        assert host.url is not None
        self.url = f"{host.url}{s.path.rstrip('/')}/"
        rt.plugins.pm.register(_StopHook(self), name=self._hook_name)
        self._url_file = rt.data_dir / URL_FILE
        try:
            rt.data_dir.mkdir(parents=True, exist_ok=True)
            self._url_file.write_text(self.url + "\n")
        except OSError as exc:  # only the multi-process parent's link needs it
            log.warning("dashboard: could not write %s: %s", self._url_file, exc)
            self._url_file = None
        log.info("dashboard on %s", self.url)
        return self.url

    async def act(self, verb: str, target: str) -> dict[str, Any]:
        """One action of an authenticated page (see app.py): kill/revive an instance, fail a lease
        over (kill its leader: a standby takes it when the lease expires), clear the kept letters."""
        rt = self.runtime
        if verb == "kill":
            await rt.kill(target)
            return {"killed": target}
        if verb == "revive":
            rt.revive(target)
            return {"revived": target}
        if verb == "failover":
            lease = next((entry for entry in self.collector.leases() if entry["lease"] == target), None)
            if lease is None or not lease["leader"]:
                raise LookupError(f"no lease {target!r} with a known leader in this process")
            await rt.kill(lease["leader"])
            return {"killed": lease["leader"], "lease": target, "epoch": lease["epoch"]}
        if verb == "clear-dead-letters":
            channel = rt.dead_letters
            cleared = len(channel.recent)
            keep = channel.keep  # counts and the SQL table stay: they are the run's record
            channel.configure(keep=0, keep_bytes=channel.keep_bytes, log_interval=channel.log.interval,
                              quarantine_after=channel.quarantine.after, quarantine_for=channel.quarantine.duration)
            channel.configure(keep=keep, keep_bytes=channel.keep_bytes, log_interval=channel.log.interval,
                              quarantine_after=channel.quarantine.after, quarantine_for=channel.quarantine.duration)
            return {"cleared": cleared}
        raise LookupError(f"no action {verb!r}; actions: kill, revive, failover, clear-dead-letters")

    def closing(self) -> None:
        """End the open streams (the plant is stopping)."""
        self.broadcaster.close()

    async def aclose(self) -> None:
        self.closing()
        await self.tail.detach()
        if self.runtime.plugins.pm.has_plugin(self._hook_name):
            self.runtime.plugins.pm.unregister(name=self._hook_name)
        if self._own_host is not None:
            await self._own_host.aclose()
        elif self.runtime.http is not None:
            self.runtime.http.release(OWNER)
            self.runtime.http.release("forge.asyncapi")
        if self._url_file is not None:
            self._url_file.unlink(missing_ok=True)


class _StopHook:
    """Registered on the plant's plugin manager while the dashboard runs."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    @hookimpl
    def forge_plant_stopping(self, runtime: Runtime) -> None:
        if runtime is self.dashboard.runtime:
            self.dashboard.closing()
