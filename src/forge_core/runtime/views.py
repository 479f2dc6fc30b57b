"""What a running plant shows outside: its :class:`RunSummary` and its health and readiness probes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forge_core.runtime.summary import RunSummary
from forge_core.runtime.supervisor import FAILED, RUNNING

if TYPE_CHECKING:
    from forge_core.runtime.runtime import Runtime


def run_summary(runtime: Runtime) -> RunSummary:
    """The summary of ``runtime``'s run so far (``forge run`` prints it at the end)."""
    bus = runtime.bus
    return RunSummary(
        plant=runtime.manifest.name,
        profile=runtime.manifest.profile,
        clock="virtual" if runtime.clock_is_virtual else "real",
        seed=runtime.seed,
        duration=runtime.clock.monotonic() - runtime._start_clock,
        wall_seconds=time.perf_counter() - runtime._start_wall,
        components={name: s.state for name, s in runtime.supervisors.items()},
        restarts={name: s.restarts for name, s in runtime.supervisors.items() if s.restarts},
        kills={name: s.kills for name, s in runtime.supervisors.items() if s.kills},
        published=dict(sorted(bus.stats.published.items())) if bus else {},
        handled=dict(sorted(bus.stats.handled.items())) if bus else {},
        dead_letters=dict(sorted(runtime.dead_letters.counts.items())),
        forwarded=bus.stats.forwarded if bus else 0,
        trace_digest=runtime.trace.digest if runtime.trace else None,
        trace_messages=runtime.trace.count if runtime.trace else 0,
        stop_reason=runtime._stop_reason,
        reports=dict(getattr(runtime, "_reports", {})),
        checks=list(getattr(runtime, "_checks", [])),
        extra={"dead_letters": runtime.dead_letter_sinks.accounting()} if runtime.dead_letter_sinks else {},
    )


def health_snapshot(runtime: Runtime) -> tuple[bool, bool, dict[str, Any]]:
    """(healthy, ready, detail) for the probes: healthy unless a component gave up or a
    transport is down; ready when, besides, every component is running, the plant's database
    answers (its probe's last verdict) and the gRPC server, once started, is serving.

    A dead database or gRPC server fails readiness only, not liveness: restarting this process
    would not bring the database back (Kubernetes' advice: liveness checks the process itself,
    not what it depends on), while readiness takes it out of the load balancer until it is back."""
    supervisors = runtime.supervisors
    states = {name: s.state for name, s in supervisors.items()}
    transports = {name: t.health() for name, t in runtime.transports.items()}
    healthy = all(state != FAILED for state in states.values()) and all(h.connected for h in transports.values())
    reports = {name: s.instance.health() if s.instance is not None else {} for name, s in supervisors.items()}
    # a component may say it is not ready (its database unreachable, say) with "ready": False
    storage = runtime.storage_probe.status() if runtime.storage_probe is not None else None
    grpc = runtime.grpc.readiness() if runtime.grpc is not None else None
    ready = healthy and all(state == RUNNING for state in states.values()) and runtime._stopped is None \
        and all(r.get("ready", True) is not False for r in reports.values()) \
        and (storage is None or storage["ok"]) and (grpc is None or grpc["ok"])
    detail = {
        "plant": runtime.manifest.name,
        "components": {
            name: {"state": s.state, "restarts": s.restarts, "last_error": s.last_error,
                   **reports[name]}
            for name, s in supervisors.items()
        },
        "transports": {name: {"connected": h.connected, "detail": h.detail} for name, h in transports.items()},
        "dead_letters": dict(runtime.dead_letters.counts),
        "dead_letter_accounting": runtime.dead_letter_sinks.accounting() if runtime.dead_letter_sinks else {},
    }
    if runtime.http is not None and runtime.http.mounts():
        detail["http"] = {"url": runtime.http.url, "mounts": runtime.http.mounts()}
    if storage is not None:
        detail["storage"] = storage
    if grpc is not None and runtime.grpc is not None:
        detail["grpc"] = {**grpc, "services": runtime.grpc.services()}
    return healthy, ready, detail
