"""The Redis lease backend: keys with PX expiry (real time only), atomic Lua scripts.

The ``redis`` package is imported only when a backend is built from a URL or makes a call.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from forge_core.tactics.leader.lease import GRANT_HISTORY, Grant, Lease, LeaseBackendUnavailable

__all__ = ["RedisLeaseBackend"]

# KEYS[1] lease key, KEYS[2] epoch counter, KEYS[3] grant history; ARGV[1] holder, ARGV[2] ttl in
# ms, ARGV[3] grants kept. A grant under a new epoch is appended to the history list as
# "<epoch>|<seconds.micros>|<holder>" (Redis TIME) in the same script, so history and lease agree.
# The value is "<epoch>|<holder>". When the counter is missing (first use, or Redis lost its
# data in a restart without persistence) it restarts from Redis's TIME in milliseconds, which
# is above every earlier epoch unless leases changed hands more than once per millisecond.
_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local e, h = string.match(cur, '^(%d+)|(.*)$')
  if h == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {e, redis.call('PTTL', KEYS[1])}
  end
  return false
end
local e = redis.call('INCR', KEYS[2])
if e == 1 then
  local t = redis.call('TIME')
  e = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', e))
end
local es = string.format('%d', e)
redis.call('SET', KEYS[1], es .. '|' .. ARGV[1], 'PX', ARGV[2])
local now = redis.call('TIME')
redis.call('RPUSH', KEYS[3], es .. '|' .. now[1] .. '.' .. string.format('%06d', tonumber(now[2])) .. '|' .. ARGV[1])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
return {es, tonumber(ARGV[2])}
"""

# ARGV[1] "<epoch>|<holder>", ARGV[2] ttl ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeaseBackend:
    """Leases as Redis keys with PX expiry; acquire/renew/release are atomic Lua scripts.

    The lease key holds ``"<epoch>|<holder>"`` and expires by Redis's own clock, so expiry is in
    **real time**: use this backend only in real-time runs (the ``now`` argument only fills in
    :attr:`Lease.expires_at`). The epoch comes from ``INCR`` on ``<key>:epoch``; if Redis loses
    that counter (restart without persistence), it restarts from Redis's clock in milliseconds
    so epochs keep rising and fencing stays sound.
    """

    def __init__(self, url: str | None = None, *, client: Any = None, prefix: str = "forge:lease:",
                 history: int = GRANT_HISTORY) -> None:
        if (url is None) == (client is None):
            raise ValueError("RedisLeaseBackend: pass exactly one of url= or client=")
        if client is None:
            assert url is not None  # checked above: exactly one of url and client
            import redis.asyncio as aioredis

            client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.url = url or repr(client)
        self.client = client
        self.prefix = prefix
        self.history = history
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _keys(self, name: str) -> list[str]:
        key = self.prefix + name
        return [key, key + ":epoch", key + ":grants"]

    async def _call(self, what: str, coro: Awaitable[Any]) -> Any:
        import redis.exceptions

        try:
            return await coro
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise LeaseBackendUnavailable(f"redis lease backend at {self.url}: {what} failed: {exc}") from exc

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        ms = max(1, round(ttl * 1000))
        reply = await self._call(f"acquire {name!r}", self._acquire(keys=self._keys(name),
                                                                     args=[holder, ms, self.history]))
        if not reply:
            return None
        epoch, pttl = int(reply[0]), int(reply[1])
        return Lease(holder, epoch, now + pttl / 1000)

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        ms = max(1, round(ttl * 1000))
        ok = await self._call(
            f"renew {name!r}", self._renew(keys=self._keys(name)[:1], args=[f"{epoch}|{holder}", ms])
        )
        return Lease(holder, epoch, now + ttl) if ok else None

    async def release(self, name: str, holder: str, epoch: int) -> None:
        await self._call(
            f"release {name!r}", self._release(keys=self._keys(name)[:1], args=[f"{epoch}|{holder}"])
        )

    async def current(self, name: str, now: float) -> Lease | None:
        key = self._keys(name)[0]

        async def _get() -> tuple[Any, Any]:
            async with self.client.pipeline(transaction=True) as pipe:
                return tuple(await pipe.get(key).pttl(key).execute())

        value, pttl = await self._call(f"read {name!r}", _get())
        if value is None or pttl is None or int(pttl) < 0:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        epoch, _, holder = text.partition("|")
        return Lease(holder, int(epoch), now + int(pttl) / 1000)

    async def grants(self, name: str, after: int = 0) -> list[Grant]:
        raw = await self._call(f"read grants of {name!r}", self.client.lrange(self._keys(name)[2], 0, -1))
        out = []
        for item in raw:
            text = item.decode() if isinstance(item, bytes) else str(item)
            epoch, at, holder = text.split("|", 2)
            if int(epoch) > after:  # the list is oldest first; filtered here (it is at most GRANT_HISTORY long)
                out.append(Grant(int(epoch), holder, float(at)))
        return out

    async def aclose(self) -> None:
        await self.client.aclose()
