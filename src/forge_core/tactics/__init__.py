"""Fault-tolerance tactics: each an interface plus a reference implementation.

Every tactic reads time only from an injected :class:`~forge_core.clock.Clock` (or takes times
as arguments), so whole plants run under virtual time. See ``docs/tactics/``.
"""

from forge_core.tactics.backpressure import BackpressureController
from forge_core.tactics.dedup import IdempotencyKeys, KeyStore, SqliteKeyStore, WindowDeduplicator
from forge_core.tactics.detectors import (
    FailureDetector,
    FixedTimeoutDetector,
    PhiAccrualDetector,
    expected_detection_time,
)
from forge_core.tactics.failover import FailoverContext, FailoverDecision, FailoverPolicy, RoundRobinFailover
from forge_core.tactics.heartbeat_status import HeartbeatStatusMonitor, Status, StatusChange
from forge_core.tactics.leader import (
    GRANT_HISTORY,
    SIGNATURE_FIELD,
    FencedReceiver,
    Grant,
    LeaderElector,
    Lease,
    LeaseBackend,
    LeaseBackendUnavailable,
    MemoryLeaseBackend,
    MemoryStateStore,
    NotLeader,
    RedisLeaseBackend,
    SqlLeaseBackend,
    SqlStateStore,
    StaleEpoch,
    StateStore,
    command_body,
    sign_command,
    sign_payload,
    verify_payload,
)
from forge_core.tactics.outbox import Outbox, OutboxFull
from forge_core.tactics.retry import Backoff, CrashLoopWindow, RetryPolicy

__all__ = [
    "GRANT_HISTORY",
    "SIGNATURE_FIELD",
    "Backoff",
    "BackpressureController",
    "CrashLoopWindow",
    "FailoverContext",
    "FailoverDecision",
    "FailoverPolicy",
    "FailureDetector",
    "FencedReceiver",
    "FixedTimeoutDetector",
    "Grant",
    "HeartbeatStatusMonitor",
    "IdempotencyKeys",
    "KeyStore",
    "LeaderElector",
    "Lease",
    "LeaseBackend",
    "LeaseBackendUnavailable",
    "MemoryLeaseBackend",
    "MemoryStateStore",
    "NotLeader",
    "Outbox",
    "OutboxFull",
    "PhiAccrualDetector",
    "RedisLeaseBackend",
    "RetryPolicy",
    "RoundRobinFailover",
    "SqlLeaseBackend",
    "SqlStateStore",
    "SqliteKeyStore",
    "StaleEpoch",
    "StateStore",
    "Status",
    "StatusChange",
    "WindowDeduplicator",
    "command_body",
    "expected_detection_time",
    "sign_command",
    "sign_payload",
    "verify_payload",
]
