"""Fault-tolerance tactics: each an interface plus a reference implementation.

Every tactic reads time only from an injected :class:`~forge_core.clock.Clock` (or takes times
as arguments), so whole plants run under virtual time. See ``docs/tactics/``.
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use: the SQL backends and stores pull in SQLAlchemy/Alembic (docs/performance.md).
__getattr__, __dir__ = lazy_exports(__name__, {
    "BackpressureController": "forge_core.tactics.backpressure:BackpressureController",
    "IdempotencyKeys": "forge_core.tactics.dedup:IdempotencyKeys",
    "KeyStore": "forge_core.tactics.dedup:KeyStore",
    "SqliteKeyStore": "forge_core.tactics.dedup:SqliteKeyStore",
    "WindowDeduplicator": "forge_core.tactics.dedup:WindowDeduplicator",
    "FailureDetector": "forge_core.tactics.detectors:FailureDetector",
    "FixedTimeoutDetector": "forge_core.tactics.detectors:FixedTimeoutDetector",
    "PhiAccrualDetector": "forge_core.tactics.detectors:PhiAccrualDetector",
    "expected_detection_time": "forge_core.tactics.detectors:expected_detection_time",
    "FailoverContext": "forge_core.tactics.failover:FailoverContext",
    "FailoverDecision": "forge_core.tactics.failover:FailoverDecision",
    "FailoverPolicy": "forge_core.tactics.failover:FailoverPolicy",
    "RoundRobinFailover": "forge_core.tactics.failover:RoundRobinFailover",
    "HeartbeatStatusMonitor": "forge_core.tactics.heartbeat_status:HeartbeatStatusMonitor",
    "Status": "forge_core.tactics.heartbeat_status:Status",
    "StatusChange": "forge_core.tactics.heartbeat_status:StatusChange",
    "GRANT_HISTORY": "forge_core.tactics.leader:GRANT_HISTORY",
    "SIGNATURE_FIELD": "forge_core.tactics.leader:SIGNATURE_FIELD",
    "FencedReceiver": "forge_core.tactics.leader:FencedReceiver",
    "Grant": "forge_core.tactics.leader:Grant",
    "LeaderElector": "forge_core.tactics.leader:LeaderElector",
    "Lease": "forge_core.tactics.leader:Lease",
    "LeaseBackend": "forge_core.tactics.leader:LeaseBackend",
    "LeaseBackendUnavailable": "forge_core.tactics.leader:LeaseBackendUnavailable",
    "MemoryLeaseBackend": "forge_core.tactics.leader:MemoryLeaseBackend",
    "MemoryStateStore": "forge_core.tactics.leader:MemoryStateStore",
    "NotLeader": "forge_core.tactics.leader:NotLeader",
    "RedisLeaseBackend": "forge_core.tactics.leader:RedisLeaseBackend",
    "SqlLeaseBackend": "forge_core.tactics.leader:SqlLeaseBackend",
    "SqlStateStore": "forge_core.tactics.leader:SqlStateStore",
    "StaleEpoch": "forge_core.tactics.leader:StaleEpoch",
    "StateStore": "forge_core.tactics.leader:StateStore",
    "command_body": "forge_core.tactics.leader:command_body",
    "sign_command": "forge_core.tactics.leader:sign_command",
    "sign_payload": "forge_core.tactics.leader:sign_payload",
    "verify_payload": "forge_core.tactics.leader:verify_payload",
    "Outbox": "forge_core.tactics.outbox:Outbox",
    "OutboxFull": "forge_core.tactics.outbox:OutboxFull",
    "Backoff": "forge_core.tactics.retry:Backoff",
    "CrashLoopWindow": "forge_core.tactics.retry:CrashLoopWindow",
    "RetryPolicy": "forge_core.tactics.retry:RetryPolicy",
})

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
