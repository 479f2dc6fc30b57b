"""The hooks of the built-in plugin ``forge_core.tactics``: the tactic kinds and implementations
of :mod:`forge_core.builtin.tactics`, registered by path so that loading the plugins imports
neither pydantic nor a tactic (they load when a plant's tactics are built or validated)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forge_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from forge_core.errors import ManifestProblem
    from forge_core.manifest import Manifest
    from forge_core.registry import TacticRegistry

#: Where the settings models and factories registered below live.
_T = "forge_core.builtin.tactics:"


@hookimpl
def forge_validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """Tactic combinations that cannot work, caught before a run."""
    from forge_core.builtin.tactics import validate_manifest

    return validate_manifest(manifest)


@hookimpl(tryfirst=True)  # built-ins register first: a clash blames the plugin
def forge_register_tactics(registry: TacticRegistry) -> None:
    registry.add_kind("leader", settings=_T + "LeaderSettings", default_use="memory")
    registry.add_kind("detector", settings=_T + "NoKindSettings", default_use="phi")
    registry.add_kind("heartbeat", settings=_T + "HeartbeatSettings")
    registry.add_kind("retry", settings=_T + "RetrySettings")
    registry.add_kind("dedup", settings=_T + "DedupSettings")
    registry.add_kind("backpressure", settings=_T + "BackpressureSettings")
    registry.add_kind("outbox", settings=_T + "OutboxSettings")
    registry.add_kind("state", settings=_T + "NoKindSettings", default_use="memory")
    registry.add_kind("failover", settings=_T + "NoKindSettings", default_use="round_robin")
    registry.add(
        "leader.memory",
        _T + "_leader_memory",
        settings=_T + "LeaderMemorySettings",
        description="in-process leases (embedded, simulation)",
    )
    registry.add(
        "leader.sql",
        _T + "_leader_sql",
        settings=_T + "SqlUrlSettings",
        description="one row per lease, conditional UPDATE (SQLite, PostgreSQL)",
    )
    registry.add(
        "leader.redis",
        _T + "_leader_redis",
        settings=_T + "LeaderRedisSettings",
        description="SET NX PX with an epoch counter (Lua), real time only",
    )
    registry.add(
        "detector.phi",
        _T + "_detector_phi",
        settings=_T + "DetectorPhiSettings",
        description="phi accrual (Hayashibara et al., Akka's parameters)",
    )
    registry.add(
        "detector.timeout",
        _T + "_detector_timeout",
        settings=_T + "DetectorTimeoutSettings",
        description="DOWN after a fixed silence",
    )
    registry.add(
        "state.memory",
        _T + "_state_memory",
        settings=_T + "NoSettings",
        description="state handed over inside one process",
    )
    registry.add(
        "state.sql",
        _T + "_state_sql",
        settings=_T + "SqlUrlSettings",
        description="fenced state rows in forge_kv (SQLite, PostgreSQL)",
    )
    registry.add(
        "failover.round_robin",
        _T + "_failover_round_robin",
        settings=_T + "RoundRobinSettings",
        description="next healthy target in rotation",
    )
