"""Leader election with leases and fencing tokens, plus fenced state handover.

The seed's active/shadow schedulers raced ``SET active_scheduler primary NX EX 5`` and renewed
every 3 s. This package keeps that idea and adds what it lacked:

* every grant of a lease carries an **epoch** that rises on each change of holder, and a leader
  stamps its commands with it; a :class:`FencedReceiver` drops commands from older epochs, so a
  deposed leader (paused, partitioned) can never act after its successor;
* a leader **deposes itself** when it could not renew in time, a safety margin *before* the
  lease could be granted to someone else;
* a clean shutdown **releases** the lease so the successor takes over at once;
* a :class:`StateStore` with epoch-fenced writes is where a leader persists what its successor
  loads on election (the handover).

Backends: :class:`MemoryLeaseBackend` (one process, any clock), :class:`SqlLeaseBackend`
(SQLite/PostgreSQL via SQLAlchemy, times from the clock) and :class:`RedisLeaseBackend` (Redis
expiry, real time only).

One module per job: :mod:`.lease` (the lease, its backend protocol, the errors),
:mod:`.memory`, :mod:`.sql` and :mod:`.redis` (the backends), :mod:`.elector`, :mod:`.fencing`
and :mod:`.state` (the fenced state stores).
"""

from typing import TYPE_CHECKING

from forge_core._lazy import lazy_exports

if TYPE_CHECKING:
    from forge_core.tactics.leader.elector import Callback as Callback  # the old module's type alias
    from forge_core.tactics.leader.elector import LeaderElector
    from forge_core.tactics.leader.fencing import (
        SIGNATURE_FIELD,
        FencedReceiver,
        command_body,
        sign_command,
        sign_payload,
        verify_payload,
    )
    from forge_core.tactics.leader.lease import (
        GRANT_HISTORY,
        Grant,
        Lease,
        LeaseBackend,
        LeaseBackendUnavailable,
        NotLeader,
        StaleEpoch,
    )
    from forge_core.tactics.leader.memory import MemoryLeaseBackend
    from forge_core.tactics.leader.redis import RedisLeaseBackend
    from forge_core.tactics.leader.sql import SqlLeaseBackend
    from forge_core.tactics.leader.state import MemoryStateStore, SqlStateStore, StateStore

# Imported on first use: the SQL backends and stores pull in SQLAlchemy/Alembic (docs/performance.md).
__getattr__, __dir__ = lazy_exports(__name__, {
    "Callback": "forge_core.tactics.leader.elector:Callback",
    "LeaderElector": "forge_core.tactics.leader.elector:LeaderElector",
    "SIGNATURE_FIELD": "forge_core.tactics.leader.fencing:SIGNATURE_FIELD",
    "FencedReceiver": "forge_core.tactics.leader.fencing:FencedReceiver",
    "command_body": "forge_core.tactics.leader.fencing:command_body",
    "sign_command": "forge_core.tactics.leader.fencing:sign_command",
    "sign_payload": "forge_core.tactics.leader.fencing:sign_payload",
    "verify_payload": "forge_core.tactics.leader.fencing:verify_payload",
    "GRANT_HISTORY": "forge_core.tactics.leader.lease:GRANT_HISTORY",
    "Grant": "forge_core.tactics.leader.lease:Grant",
    "Lease": "forge_core.tactics.leader.lease:Lease",
    "LeaseBackend": "forge_core.tactics.leader.lease:LeaseBackend",
    "LeaseBackendUnavailable": "forge_core.tactics.leader.lease:LeaseBackendUnavailable",
    "NotLeader": "forge_core.tactics.leader.lease:NotLeader",
    "StaleEpoch": "forge_core.tactics.leader.lease:StaleEpoch",
    "MemoryLeaseBackend": "forge_core.tactics.leader.memory:MemoryLeaseBackend",
    "RedisLeaseBackend": "forge_core.tactics.leader.redis:RedisLeaseBackend",
    "SqlLeaseBackend": "forge_core.tactics.leader.sql:SqlLeaseBackend",
    "MemoryStateStore": "forge_core.tactics.leader.state:MemoryStateStore",
    "SqlStateStore": "forge_core.tactics.leader.state:SqlStateStore",
    "StateStore": "forge_core.tactics.leader.state:StateStore",
})

__all__ = [
    "GRANT_HISTORY",
    "SIGNATURE_FIELD",
    "FencedReceiver",
    "Grant",
    "LeaderElector",
    "Lease",
    "LeaseBackend",
    "LeaseBackendUnavailable",
    "MemoryLeaseBackend",
    "MemoryStateStore",
    "NotLeader",
    "RedisLeaseBackend",
    "SqlLeaseBackend",
    "SqlStateStore",
    "StaleEpoch",
    "StateStore",
    "command_body",
    "sign_command",
    "sign_payload",
    "verify_payload",
]
