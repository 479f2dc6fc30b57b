"""The plant's state as one JSON-able document: what every page push carries.

Read on the plant's loop from the runtime's own objects (supervisors, transports, dead-letter
channel, electors, heartbeat monitors) and the live tail; nothing here blocks or does I/O, and
a component whose ``health()``, ``checks()`` or panel raises shows the error instead of the
value. Rates are counts between two snapshots over the time between them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor

if TYPE_CHECKING:
    from forge_core.dashboard.tail import MessageTail
    from forge_core.runtime.runtime import Runtime

#: instance state -> the page's UP / DEGRADED / DOWN
STATUS = {"running": "UP", "starting": "DEGRADED", "restarting": "DEGRADED", "killed": "DOWN", "failed": "DOWN",
          "crashed": "DOWN", "stopped": "DOWN"}
LATEST_LETTERS = 50
CHECKS_EVERY = 5.0  # s: a component's checks() may read a ledger or a table; not every push


class Collector:
    def __init__(self, runtime: Runtime, tail: MessageTail, *, children_dir: Path | None = None) -> None:
        self.runtime, self.tail = runtime, tail
        #: the multi-process parent's run dir: <dir>/<instance>/dashboard.url is each child's dashboard
        self.children_dir = children_dir
        #: more links for the header (name -> URL): the AsyncAPI page forge run mounts beside the dashboard
        self.links: dict[str, str] = {}
        self._last: tuple[float, dict[str, int], dict[str, int]] | None = None
        self._checks: list[dict[str, Any]] = []
        self._checks_at = -CHECKS_EVERY
        self.started = time.time()

    def snapshot(self) -> dict[str, Any]:
        rt = self.runtime
        now = time.monotonic()
        topic_rates, transport_rates = self._rates(now)
        return {
            "plant": {"name": rt.manifest.name, "profile": rt.manifest.profile, "pid": _pid(),
                      "uptime": round(time.time() - self.started, 1), "links": self._links()},
            "components": self.components(),
            "transports": [
                {"name": name, "type": type(t).__name__, "connected": (h := t.health()).connected, "detail": h.detail,
                 "messages": self.tail.by_transport.get(name, 0), "rate": transport_rates.get(name, 0.0)}
                for name, t in rt.transports.items()],
            "leases": self.leases(),
            "sources": self.sources(),
            "dead_letters": self.dead_letters(),
            "checks": self.checks(now),
            "topics": [{"topic": topic, "messages": n, "rate": topic_rates.get(topic, 0.0)}
                       for topic, n in sorted(self.tail.counts.items())],
            "tail": {"sampled_out": self.tail.sampled_out, "kept_topics": len(self.tail.recent)},
            "panels": [panel.as_dict() for panel in rt.plugins.dashboard_panels(rt)],
        }

    def _rates(self, now: float) -> tuple[dict[str, float], dict[str, float]]:
        topics, transports = dict(self.tail.counts), dict(self.tail.by_transport)
        last, self._last = self._last, (now, topics, transports)
        if last is None or now - last[0] <= 0:
            return {}, {}
        span = now - last[0]
        return ({k: round((v - last[1].get(k, 0)) / span, 2) for k, v in topics.items()},
                {k: round((v - last[2].get(k, 0)) / span, 2) for k, v in transports.items()})

    def _links(self) -> dict[str, str]:
        http = self.runtime.http
        links = dict(self.links)
        if http is not None and http.url is not None:
            # the other apps of this process's HTTP server (an API, /b2mml), not the page itself
            links.update({prefix: http.url + prefix for prefix, owner in http.mounts().items()
                          if prefix != "/" and owner not in ("forge.dashboard", "forge.asyncapi")})
        return links

    def components(self) -> list[dict[str, Any]]:
        rt = self.runtime
        rows = []
        for name, s in self.runtime.supervisors.items():
            try:
                health = s.instance.health() if s.instance is not None else {}
            except Exception as exc:
                health = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append({"instance": name, "component": s.context.component if s.context else _component(name, rt),
                         "state": s.state, "status": STATUS.get(s.state, "DEGRADED"), "restarts": s.restarts,
                         "last_error": s.last_error, "health": _jsonable(health), "process": "this"})
        for name, child in self.runtime.children.items():
            state = str(getattr(child, "state", "?"))
            url = None
            if self.children_dir is not None:
                path = self.children_dir / name / "dashboard.url"
                url = path.read_text().strip() if path.is_file() else None
            rows.append({"instance": name, "component": name.rsplit("-", 1)[0], "state": state,
                         "status": STATUS.get(state, "DEGRADED"), "restarts": getattr(child, "restarts", 0),
                         "last_error": getattr(child, "last_error", None), "health": {},
                         "process": f"pid {getattr(child, 'pid', None) or '-'}", "dashboard": url})
        return rows

    def leases(self) -> list[dict[str, Any]]:
        leases: dict[str, dict[str, Any]] = {}
        for s in self.runtime.supervisors.values():
            # the instance's electors (ctx.elector): who campaigns here and who leads
            for elector in getattr(s.context, "_electors", []) if s.context is not None else []:
                entry = leases.setdefault(elector.name, {"lease": elector.name, "leader": None, "epoch": None,
                                                         "candidates": []})
                entry["candidates"].append(elector.holder)
                if elector.is_leader:
                    entry["leader"], entry["epoch"] = elector.holder, elector.epoch
        for name, body in self.tail.leases.items():  # announced on forge/leader/<lease>, maybe by another process
            entry = leases.setdefault(name, {"lease": name, "leader": None, "epoch": None, "candidates": []})
            if entry["leader"] is None or (body.get("epoch") or 0) > (entry["epoch"] or 0):
                entry["leader"], entry["epoch"] = body.get("holder"), body.get("epoch")
        return [leases[k] for k in sorted(leases)]

    def sources(self) -> list[dict[str, Any]]:
        now = self.runtime.clock.time()
        found: dict[str, dict[str, Any]] = {}
        for name, s in self.runtime.supervisors.items():
            instance = s.instance
            if instance is None:
                continue
            for value in list(vars(instance).values()):
                if isinstance(value, HeartbeatStatusMonitor):
                    # the state machine's per-source record (last beat, since): read-only here
                    for source, st in getattr(value, "_sources", {}).items():
                        found[source] = {"source": source, "status": str(st.status), "monitor": name,
                                         "last_beat_ago": round(now - st.last_beat, 1), "since": st.since}
        for source, body in self.tail.sources.items():
            if source not in found:
                found[source] = {"source": source, "status": body.get("status"), "monitor": body.get("monitor"),
                                 "last_beat_ago": None, "reason": body.get("reason"),
                                 "changed_ago": round(now - body["seen"], 1)}
        return [found[k] for k in sorted(found)]

    def dead_letters(self) -> dict[str, Any]:
        channel = self.runtime.dead_letters
        latest = list(channel.recent)[-LATEST_LETTERS:]
        return {"total": channel.total, "by_reason": dict(sorted(channel.counts.items())),
                "latest": [letter_row(letter) for letter in reversed(latest)]}

    def checks(self, now: float) -> list[dict[str, Any]]:
        if now - self._checks_at < CHECKS_EVERY:
            return self._checks
        self._checks_at = now
        rows = []
        for name, s in self.runtime.supervisors.items():
            if s.instance is None:
                continue
            try:
                for check in s.instance.checks():
                    rows.append({"component": check.component or name, "name": check.name, "passed": check.passed,
                                 "detail": check.detail})
            except Exception as exc:
                rows.append({"component": name, "name": "checks()", "passed": False,
                             "detail": f"raised {type(exc).__name__}: {exc}"})
        self._checks = rows
        return rows


def letter_row(letter: Any) -> dict[str, Any]:
    return {"id": letter.id, "reason": letter.reason, "detail": letter.detail, "topic": letter.topic,
            "transport": letter.transport, "component": letter.component, "type": letter.message_type,
            "time": round(letter.time, 3), "errors": letter.errors,
            "excerpt": letter.content()[:300].decode("utf-8", errors="replace")}


def _component(instance: str, runtime: Runtime) -> str:
    """The manifest component of an instance whose context is gone (killed): ``machine-1`` -> ``machine``."""
    return instance if instance in runtime.manifest.components else instance.rsplit("-", 1)[0]


def _pid() -> int:
    import os

    return os.getpid()


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v if v is None or isinstance(v, bool | int | float | str) else str(v) for k, v in value.items()}
