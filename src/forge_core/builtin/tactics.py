"""The built-in tactic kinds and implementations, registered like any plugin's would be.

Kinds (``leader``, ``detector``, …) carry the settings every implementation shares; an
implementation is registered as ``<kind>.<name>`` with its own settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from forge_core.errors import ManifestProblem
from forge_core.settings import Settings
from forge_core.tactics.service import TacticServices

if TYPE_CHECKING:
    from forge_core.manifest import Manifest


class KindSettings(Settings):
    """Base of the built-in kinds' settings; read them by attribute (``settings.ttl``)."""


# -- kinds: the settings every implementation of a kind shares -------------------------------
class LeaderSettings(KindSettings):
    ttl: float = Field(1.0, gt=0, description="lease time to live, seconds")
    renew_every: float = Field(0.3, gt=0, description="leader renews this often, seconds")
    retry_every: float = Field(0.2, gt=0, description="followers try to acquire this often, seconds")
    safety_margin: float | None = Field(
        None, ge=0, description="a leader stops acting this long before its lease ends (default 0.1 * ttl)")


class HeartbeatSettings(KindSettings):
    interval: float = Field(1.0, gt=0, description="expected beat interval, seconds")
    degraded_after: float = Field(1.5, gt=1, description="a gap over this many intervals is DEGRADED")
    recover_after: int = Field(5, ge=1, description="consecutive healthy beats before DOWN/DEGRADED → UP")
    error_rate_threshold: float = Field(0.2, ge=0, description="unhealthy share → DEGRADED")
    error_window: float = Field(30.0, gt=0, description="window of the error rate, seconds")


class RetrySettings(KindSettings):
    max_attempts: int = Field(5, ge=1, description="attempts including the first")
    initial: float = Field(0.1, ge=0, description="first backoff, seconds")
    max_backoff: float = Field(5.0, ge=0, description="cap of one backoff, seconds")
    multiplier: float = Field(2.0, ge=1, description="backoff growth per attempt")
    jitter: float = Field(0.1, ge=0, lt=1, description="fraction of each sleep")
    deadline: float | None = Field(None, gt=0, description="overall bound, seconds")


class DedupSettings(KindSettings):
    window: float = Field(1.0, gt=0, description="same (source, type) within this many seconds is a duplicate")
    idempotency_capacity: int = Field(100_000, ge=1, description="command keys remembered")
    idempotency_ttl: float | None = Field(None, gt=0, description="forget a key after this many seconds")


class BackpressureSettings(KindSettings):
    high: int = Field(1000, ge=1, description="queue depth that switches to the slow interval")
    low: int = Field(500, ge=0, description="depth below which the fast interval returns after settle")
    fast_interval: float = Field(0.25, gt=0, description="sampling interval under normal load, seconds")
    slow_interval: float = Field(2.0, gt=0, description="sampling interval under pressure, seconds")
    settle: float = Field(5.0, ge=0, description="time under low before switching back, seconds")


class OutboxSettings(KindSettings):
    max_bytes: int = Field(500 * 1024 * 1024, ge=1, description="outbox size limit")
    high_watermark: float = Field(0.9, gt=0, description="fraction of max_bytes reported as a warning")
    directory: str | None = Field(None, description="default: <plant>/.forge")


class NoKindSettings(KindSettings):
    """Kinds whose settings are all their implementation's (``detector``, ``state``, ``failover``)."""


# -- implementations' own settings ------------------------------------------------------------
class LeaderMemorySettings(Settings):
    channel: str | None = Field(None, description="share one backend between runtimes of a process")


class SqlUrlSettings(Settings):
    url: str | None = Field(None, description="database URL (default: the plant's storage)")


class LeaderRedisSettings(Settings):
    url: str = Field(description="Redis URL")
    prefix: str = Field("forge:lease:", description="key prefix of the leases")


class DetectorPhiSettings(Settings):
    threshold: float = Field(8.0, gt=0, description="phi above which a source is suspected")
    min_std_deviation: float = Field(0.1, gt=0, description="floor of the interval's standard deviation, seconds")
    acceptable_heartbeat_pause: float = Field(0.0, ge=0, description="extra pause tolerated, seconds")
    max_sample_size: int = Field(200, ge=1, description="intervals remembered")
    interval: float | None = Field(None, gt=0, description="expected interval (set by the monitor)")


class DetectorTimeoutSettings(Settings):
    timeout: float | None = Field(None, gt=0, description="seconds of silence before DOWN")
    timeout_intervals: float = Field(3.0, gt=0, description="timeout as a multiple of the interval")
    interval: float | None = Field(None, gt=0, description="expected interval (set by the monitor)")


class NoSettings(Settings):
    """An implementation without settings."""


class RoundRobinSettings(Settings):
    targets: list[str] = Field(default_factory=list, description="targets in rotation (set by the caller)")


# -- implementations -------------------------------------------------------------------------
_MEMORY_BACKENDS: dict[str, Any] = {}


def _leader_memory(settings: LeaderMemorySettings, services: TacticServices) -> Any:
    from forge_core.tactics.leader import MemoryLeaseBackend

    if settings.channel is None:
        return MemoryLeaseBackend()
    return _MEMORY_BACKENDS.setdefault(settings.channel, MemoryLeaseBackend())


def _leader_sql(settings: SqlUrlSettings, services: TacticServices) -> Any:
    from forge_core.storage import create_engine_from_url
    from forge_core.tactics.leader import SqlLeaseBackend

    engine = create_engine_from_url(settings.url) if settings.url else services.storage()
    return SqlLeaseBackend(engine)


def _leader_redis(settings: LeaderRedisSettings, services: TacticServices) -> Any:
    from forge_core.tactics.leader import RedisLeaseBackend

    if services.clock.__class__.__name__ == "VirtualClock":
        raise ValueError("the Redis lease expires in Redis's real time; use leader.memory or leader.sql under "
                         "--simulate")
    return RedisLeaseBackend(settings.url, prefix=settings.prefix)


def _detector_phi(settings: DetectorPhiSettings, services: TacticServices) -> Any:
    from forge_core.tactics.detectors import PhiAccrualDetector

    return PhiAccrualDetector(settings.threshold, settings.min_std_deviation, settings.acceptable_heartbeat_pause,
                              settings.max_sample_size, settings.interval or 1.0)


def _detector_timeout(settings: DetectorTimeoutSettings, services: TacticServices) -> Any:
    from forge_core.tactics.detectors import FixedTimeoutDetector

    timeout = settings.timeout or settings.timeout_intervals * (settings.interval or 1.0)
    return FixedTimeoutDetector(timeout)


def _state_memory(settings: NoSettings, services: TacticServices) -> Any:
    from forge_core.tactics.leader import MemoryStateStore

    stores: dict[str, MemoryStateStore] = {}
    return lambda namespace: stores.setdefault(namespace, MemoryStateStore())


def _state_sql(settings: SqlUrlSettings, services: TacticServices) -> Any:
    from forge_core.storage import create_engine_from_url
    from forge_core.tactics.leader import SqlStateStore

    engine = create_engine_from_url(settings.url) if settings.url else services.storage()
    return lambda namespace: SqlStateStore(engine, namespace, clock=services.clock)


def _failover_round_robin(settings: RoundRobinSettings, services: TacticServices) -> Any:
    from forge_core.tactics.failover import RoundRobinFailover

    return RoundRobinFailover(list(settings.targets))


def validate_manifest(manifest: Manifest) -> list[ManifestProblem]:
    """Tactic combinations that cannot work, caught before a run (``forge_validate_manifest``)."""
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
