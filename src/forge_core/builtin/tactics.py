"""The built-in tactic kinds and implementations, registered like any plugin's would be.

Kinds (``leader``, ``detector``, …) carry the settings every implementation shares; an
implementation is registered as ``<kind>.<name>`` with its own settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core.errors import ManifestProblem
from forge_core.hookimpl import hookimpl
from forge_core.tactics.service import TacticKind, TacticServices

if TYPE_CHECKING:
    from forge_core.manifest import Manifest
    from forge_core.registry import TacticRegistry


def _num(default: float, *, minimum: float | None = 0, exclusive: bool = True, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", "default": default, "description": description}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    return schema


def _int(default: int, minimum: int = 1, description: str = "") -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "default": default, "description": description}


def _kind(properties: dict[str, Any], *, use: str | None = None) -> dict[str, Any]:
    props = dict(properties)
    if use is not None:
        props["use"] = {"type": "string", "default": use, "description": "implementation: <kind>.<use> tactic"}
    # implementation settings ride alongside, so the kind allows other keys
    return {"type": "object", "properties": props, "additionalProperties": True}


LEADER = _kind({
    "ttl": _num(1.0, description="lease time to live, seconds"),
    "renew_every": _num(0.3, description="leader renews this often"),
    "retry_every": _num(0.2, description="followers try to acquire this often"),
    "safety_margin": {"type": ["number", "null"], "default": None,
                      "description": "a leader stops acting this long before its lease ends (default 0.1 * ttl)"},
}, use="memory")

DETECTOR = _kind({}, use="phi")

HEARTBEAT = _kind({
    "interval": _num(1.0, description="expected beat interval, seconds"),
    "degraded_after": _num(1.5, minimum=1, description="a gap over this many intervals is DEGRADED"),
    "recover_after": _int(5, description="consecutive healthy beats before DOWN/DEGRADED → UP"),
    "error_rate_threshold": _num(0.2, minimum=0, exclusive=False, description="unhealthy share → DEGRADED"),
    "error_window": _num(30.0, description="window of the error rate, seconds"),
})

RETRY = _kind({
    "max_attempts": _int(5),
    "initial": _num(0.1, minimum=0, exclusive=False),
    "max_backoff": _num(5.0, minimum=0, exclusive=False),
    "multiplier": _num(2.0, minimum=1, exclusive=False),
    "jitter": _num(0.1, minimum=0, exclusive=False, description="fraction of each sleep"),
    "deadline": {"type": ["number", "null"], "default": None, "description": "overall bound, seconds"},
})

DEDUP = _kind({
    "window": _num(1.0, description="same (source, type) within this many seconds is a duplicate"),
    "idempotency_capacity": _int(100_000, description="command keys remembered"),
    "idempotency_ttl": {"type": ["number", "null"], "default": None},
})

BACKPRESSURE = _kind({
    "high": _int(1000, description="queue depth that switches to the slow interval"),
    "low": _int(500, minimum=0, description="depth below which the fast interval returns after settle"),
    "fast_interval": _num(0.25),
    "slow_interval": _num(2.0),
    "settle": _num(5.0, minimum=0, exclusive=False),
})

OUTBOX = _kind({
    "max_bytes": _int(500 * 1024 * 1024, description="outbox size limit"),
    "high_watermark": _num(0.9, description="fraction of max_bytes reported as a warning"),
    "directory": {"type": ["string", "null"], "default": None, "description": "default: <plant>/.forge"},
})

STATE = _kind({}, use="memory")
FAILOVER = _kind({}, use="round_robin")


# -- implementations -------------------------------------------------------------------------
_MEMORY_BACKENDS: dict[str, Any] = {}


def _leader_memory(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.leader import MemoryLeaseBackend

    channel = settings.get("channel")
    if channel is None:
        return MemoryLeaseBackend()
    return _MEMORY_BACKENDS.setdefault(channel, MemoryLeaseBackend())


def _leader_sql(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.storage import create_engine_from_url
    from forge_core.tactics.leader import SqlLeaseBackend

    engine = create_engine_from_url(settings["url"]) if settings.get("url") else services.storage()
    return SqlLeaseBackend(engine)


def _leader_redis(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.leader import RedisLeaseBackend

    if services.clock.__class__.__name__ == "VirtualClock":
        raise ValueError("the Redis lease expires in Redis's real time; use leader.memory or leader.sql under "
                         "--simulate")
    return RedisLeaseBackend(settings["url"], prefix=settings["prefix"])


def _detector_phi(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.detectors import PhiAccrualDetector

    return PhiAccrualDetector(settings["threshold"], settings["min_std_deviation"],
                              settings["acceptable_heartbeat_pause"], settings["max_sample_size"],
                              settings.get("interval") or 1.0)


def _detector_timeout(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.detectors import FixedTimeoutDetector

    timeout = settings.get("timeout") or settings["timeout_intervals"] * (settings.get("interval") or 1.0)
    return FixedTimeoutDetector(timeout)


def _state_memory(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.leader import MemoryStateStore

    stores: dict[str, MemoryStateStore] = {}
    return lambda namespace: stores.setdefault(namespace, MemoryStateStore())


def _state_sql(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.storage import create_engine_from_url
    from forge_core.tactics.leader import SqlStateStore

    engine = create_engine_from_url(settings["url"]) if settings.get("url") else services.storage()
    return lambda namespace: SqlStateStore(engine, namespace, clock=services.clock)


def _failover_round_robin(settings: dict[str, Any], services: TacticServices) -> Any:
    from forge_core.tactics.failover import RoundRobinFailover

    return RoundRobinFailover(settings.get("targets", []))


@hookimpl
def forge_validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """Tactic combinations that cannot work, caught before a run."""
    tactics = manifest.tactics or {}
    leader = (tactics.get("leader") or {}).get("use", "memory")
    state = (tactics.get("state") or {}).get("use", "memory")
    problems = []
    if leader == "memory" and state == "sql":
        problems.append(ManifestProblem(
            "tactics.state.use",
            "state 'sql' persists across runs but leader 'memory' restarts epochs at 1 in every process, so after a "
            "restart every fenced save is refused as stale; use leader 'sql' or 'redis' with state 'sql', or state "
            "'memory' for a single process",
            str(manifest.path),
            manifest.line_of(("tactics", "state", "use")) or manifest.line_of(("tactics", "state"))))
    return problems


_URL = {"type": ["string", "null"], "default": None, "description": "database URL (default: the plant's storage)"}


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_tactics(registry: TacticRegistry) -> None:
    kinds = {"leader": LEADER, "detector": DETECTOR, "heartbeat": HEARTBEAT, "retry": RETRY, "dedup": DEDUP,
             "backpressure": BACKPRESSURE, "outbox": OUTBOX, "state": STATE, "failover": FAILOVER}
    for name, schema in kinds.items():
        default = schema["properties"].get("use", {}).get("default")
        registry.add(name, TacticKind(default), settings_schema=schema, description=f"{name} tactic settings")
    registry.add("leader.memory", _leader_memory, description="in-process leases (embedded, simulation)",
                 settings_schema={"type": "object", "properties": {
                     "channel": {"type": ["string", "null"], "default": None,
                                 "description": "share one backend between runtimes of a process"}}})
    registry.add("leader.sql", _leader_sql, description="one row per lease, conditional UPDATE (SQLite, PostgreSQL)",
                 settings_schema={"type": "object", "properties": {"url": _URL}})
    registry.add("leader.redis", _leader_redis, description="SET NX PX with an epoch counter (Lua), real time only",
                 settings_schema={"type": "object", "required": ["url"], "properties": {
                     "url": {"type": "string"}, "prefix": {"type": "string", "default": "forge:lease:"}}})
    registry.add("detector.phi", _detector_phi, description="phi accrual (Hayashibara et al., Akka's parameters)",
                 settings_schema={"type": "object", "properties": {
                     "threshold": _num(8.0), "min_std_deviation": _num(0.1),
                     "acceptable_heartbeat_pause": _num(0.0, minimum=0, exclusive=False),
                     "max_sample_size": _int(200), "interval": {"type": ["number", "null"]}}})
    registry.add("detector.timeout", _detector_timeout, description="DOWN after a fixed silence",
                 settings_schema={"type": "object", "properties": {
                     "timeout": {"type": ["number", "null"], "default": None, "description": "seconds"},
                     "timeout_intervals": _num(3.0, description="timeout as a multiple of the interval"),
                     "interval": {"type": ["number", "null"]}}})
    registry.add("state.memory", _state_memory, description="state handed over inside one process")
    registry.add("state.sql", _state_sql, description="fenced state rows in forge_kv (SQLite, PostgreSQL)",
                 settings_schema={"type": "object", "properties": {"url": _URL}})
    registry.add("failover.round_robin", _failover_round_robin, description="next healthy target in rotation")
