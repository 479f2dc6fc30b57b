"""The in-memory lease backend: one process, any clock (tests, virtual-time simulations)."""

from __future__ import annotations

from collections import deque

from forge_core.tactics.leader.lease import GRANT_HISTORY, Grant, Lease

__all__ = ["MemoryLeaseBackend"]


class MemoryLeaseBackend:
    """Leases in a dict: for one process, tests and virtual-time simulations."""

    #: every call returns without suspending: the elector sets no timeout around it (read from this
    #: class only, so a subclass that may wait gets its timeout back)
    answers_at_once = True

    def __init__(self, *, history: int = GRANT_HISTORY) -> None:
        # name -> (holder or None, epoch, expires_at). The epoch survives release and expiry.
        self._leases: dict[str, tuple[str | None, int, float]] = {}
        self._history = history
        self._grants: dict[str, deque[Grant]] = {}

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        cur_holder, epoch, expires = self._leases.get(name, (None, 0, 0.0))
        if cur_holder is not None and expires > now:
            if cur_holder != holder:
                return None
            self._leases[name] = (holder, epoch, now + ttl)
            return Lease(holder, epoch, now + ttl)
        epoch += 1
        self._leases[name] = (holder, epoch, now + ttl)
        self._grants.setdefault(name, deque(maxlen=self._history)).append(Grant(epoch, holder, now))
        return Lease(holder, epoch, now + ttl)

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        cur_holder, cur_epoch, expires = self._leases.get(name, (None, 0, 0.0))
        if cur_holder != holder or cur_epoch != epoch or expires <= now:
            return None
        self._leases[name] = (holder, epoch, now + ttl)
        return Lease(holder, epoch, now + ttl)

    async def release(self, name: str, holder: str, epoch: int) -> None:
        cur_holder, cur_epoch, _ = self._leases.get(name, (None, 0, 0.0))
        if cur_holder == holder and cur_epoch == epoch:
            self._leases[name] = (None, cur_epoch, 0.0)

    async def current(self, name: str, now: float) -> Lease | None:
        cur_holder, epoch, expires = self._leases.get(name, (None, 0, 0.0))
        if cur_holder is None or expires <= now:
            return None
        return Lease(cur_holder, epoch, expires)

    async def grants(self, name: str, after: int = 0) -> list[Grant]:
        history = self._grants.get(name, ())
        if not after:
            return list(history)
        # from the newest back: a poller's read costs the grants since its last, not the whole history
        fresh = []
        for grant in reversed(history):
            if grant.epoch <= after:
                break
            fresh.append(grant)
        fresh.reverse()
        return fresh
