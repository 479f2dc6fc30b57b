"""Leader election with leases and fencing tokens, plus fenced state handover.

The seed's active/shadow schedulers raced ``SET active_scheduler primary NX EX 5`` and renewed
every 3 s. This module keeps that idea and adds what it lacked:

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
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from forge_core.clock import Clock, RealClock
from forge_core.errors import ForgeError
from forge_core.storage.engine import create_tables
from forge_core.storage.tables import kv_table

__all__ = [
    "FencedReceiver",
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
]

log = logging.getLogger(__name__)


class NotLeader(ForgeError):
    """A leader-only action was attempted by an elector that does not hold the lease."""


class StaleEpoch(ForgeError):
    """A fenced write came from an epoch older than the one already stored."""


class LeaseBackendUnavailable(ForgeError):
    """The lease backend could not be reached; the caller should retry (it is not a verdict)."""


@dataclass(frozen=True)
class Lease:
    """A granted lease: who holds it, under which epoch (fencing token), until when."""

    holder: str
    epoch: int
    expires_at: float


@runtime_checkable
class LeaseBackend(Protocol):
    """Where leases live. ``now`` is the caller's clock reading (ignored by Redis)."""

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        """Grant ``name`` to ``holder`` if free or expired (new epoch); extend it if already theirs."""

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        """Extend the lease if ``holder`` still holds it under ``epoch`` and it has not expired."""

    async def release(self, name: str, holder: str, epoch: int) -> None:
        """Give the lease up at once if ``holder`` holds it under ``epoch``."""

    async def current(self, name: str, now: float) -> Lease | None:
        """The live lease on ``name``, or None if free or expired."""


# ----------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------
class MemoryLeaseBackend:
    """Leases in a dict: for one process, tests and virtual-time simulations."""

    def __init__(self) -> None:
        # name -> (holder or None, epoch, expires_at). The epoch survives release and expiry.
        self._leases: dict[str, tuple[str | None, int, float]] = {}

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        cur_holder, epoch, expires = self._leases.get(name, (None, 0, 0.0))
        if cur_holder is not None and expires > now:
            if cur_holder != holder:
                return None
            self._leases[name] = (holder, epoch, now + ttl)
            return Lease(holder, epoch, now + ttl)
        epoch += 1
        self._leases[name] = (holder, epoch, now + ttl)
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


# ----------------------------------------------------------------------------------------------
# SQL
# ----------------------------------------------------------------------------------------------
def _lease_table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float(precision=53), nullable=False),
    )


class SqlLeaseBackend:
    """One row per lease, changed only by conditional UPDATEs, so the database arbitrates.

    Acquire is ``UPDATE ... WHERE name=? AND (holder IS NULL OR expires_at <= now OR holder=?)``
    (PostgreSQL re-checks the WHERE after a concurrent writer commits, SQLite serialises
    writers), and an INSERT on first use whose primary-key clash means another process won the
    race. Times are the caller's clock readings, so this backend works under virtual time.

    The table (default ``forge_leases``: name varchar(128) PK, holder varchar(256) NULL,
    epoch bigint, expires_at double) is created if missing; a migration may create it instead.
    Calls block the event loop for one short transaction (pass ``offload=True`` on a real clock
    to run them in a worker thread).
    """

    def __init__(
        self, engine: Engine, *, table: str = "forge_leases", create: bool = True, offload: bool = False
    ) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.table = _lease_table(self.metadata, table)
        self.offload = offload
        if create:
            create_tables(engine, [self.table])  # two schedulers may start at the same moment

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            if self.offload:
                return await asyncio.to_thread(fn, *args)
            return fn(*args)
        except sa.exc.OperationalError as exc:
            raise LeaseBackendUnavailable(
                f"lease table {self.table.name!r} at {self.engine.url.render_as_string()}: {exc.orig}"
            ) from exc

    def _row_lease(self, row: Any) -> Lease:
        return Lease(row.holder, int(row.epoch), float(row.expires_at))

    def _acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        t = self.table
        stmt = (
            sa.update(t)
            .where(t.c.name == name)
            .where(sa.or_(t.c.holder.is_(None), t.c.expires_at <= now, t.c.holder == holder))
            .values(
                epoch=sa.case(
                    (sa.and_(t.c.holder == holder, t.c.expires_at > now), t.c.epoch),
                    else_=t.c.epoch + 1,
                ),
                holder=holder,
                expires_at=now + ttl,
            )
            .returning(t.c.holder, t.c.epoch, t.c.expires_at)
        )
        for _ in range(3):
            with self.engine.begin() as conn:
                row = conn.execute(stmt).first()
                if row is not None:
                    return self._row_lease(row)
                exists = conn.execute(sa.select(t.c.name).where(t.c.name == name)).first()
                if exists is not None:
                    return None  # held by someone else
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(t).values(name=name, holder=holder, epoch=1, expires_at=now + ttl))
                return Lease(holder, 1, now + ttl)
            except sa.exc.IntegrityError:
                continue  # another process inserted first: re-run the conditional UPDATE
        return None

    def _renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        t = self.table
        stmt = (
            sa.update(t)
            .where(t.c.name == name, t.c.holder == holder, t.c.epoch == epoch, t.c.expires_at > now)
            .values(expires_at=now + ttl)
            .returning(t.c.holder, t.c.epoch, t.c.expires_at)
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        return self._row_lease(row) if row is not None else None

    def _release(self, name: str, holder: str, epoch: int) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.name == name, t.c.holder == holder, t.c.epoch == epoch)
                .values(holder=None, expires_at=0.0)
            )

    def _current(self, name: str, now: float) -> Lease | None:
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
        if row is None or row.holder is None or row.expires_at <= now:
            return None
        return self._row_lease(row)

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        return await self._run(self._acquire, name, holder, ttl, now)

    async def renew(self, name: str, holder: str, epoch: int, ttl: float, now: float) -> Lease | None:
        return await self._run(self._renew, name, holder, epoch, ttl, now)

    async def release(self, name: str, holder: str, epoch: int) -> None:
        await self._run(self._release, name, holder, epoch)

    async def current(self, name: str, now: float) -> Lease | None:
        return await self._run(self._current, name, now)


# ----------------------------------------------------------------------------------------------
# Redis
# ----------------------------------------------------------------------------------------------
# KEYS[1] lease key, KEYS[2] epoch counter; ARGV[1] holder, ARGV[2] ttl in ms.
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

    def __init__(self, url: str | None = None, *, client: Any = None, prefix: str = "forge:lease:") -> None:
        if (url is None) == (client is None):
            raise ValueError("RedisLeaseBackend: pass exactly one of url= or client=")
        if client is None:
            assert url is not None  # checked above: exactly one of url and client
            import redis.asyncio as aioredis

            client = aioredis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.url = url or repr(client)
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _keys(self, name: str) -> list[str]:
        key = self.prefix + name
        return [key, key + ":epoch"]

    async def _call(self, what: str, coro: Awaitable[Any]) -> Any:
        import redis.exceptions

        try:
            return await coro
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise LeaseBackendUnavailable(f"redis lease backend at {self.url}: {what} failed: {exc}") from exc

    async def try_acquire(self, name: str, holder: str, ttl: float, now: float) -> Lease | None:
        ms = max(1, round(ttl * 1000))
        reply = await self._call(f"acquire {name!r}", self._acquire(keys=self._keys(name), args=[holder, ms]))
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

    async def aclose(self) -> None:
        await self.client.aclose()


# ----------------------------------------------------------------------------------------------
# Elector
# ----------------------------------------------------------------------------------------------
Callback = Callable[[int], Any]


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class LeaderElector:
    """Campaigns for lease ``name`` as ``holder`` and keeps it renewed while it holds it.

    Timing (defaults): a leader renews every ``renew_every`` (0.3 s) a lease of ``ttl`` (1.0 s);
    followers retry every ``retry_every`` (0.2 s). A leader counts its lease valid until
    ``sent + ttl - safety_margin`` where ``sent`` is when it *sent* the grant/renew request
    (the backend's expiry is later than that); past that instant :attr:`is_leader` is False and
    ``on_deposed`` fires even if a backend call hangs. So a dead leader's successor is elected
    at most ``ttl + retry_every`` (1.2 s) after the leader's last renewal.
    """

    def __init__(
        self,
        backend: LeaseBackend,
        name: str,
        holder: str,
        clock: Clock,
        *,
        ttl: float = 1.0,
        renew_every: float = 0.3,
        retry_every: float = 0.2,
        safety_margin: float | None = None,
        on_elected: Callback | None = None,
        on_deposed: Callback | None = None,
    ) -> None:
        margin = 0.1 * ttl if safety_margin is None else safety_margin
        if not 0 < renew_every < ttl - margin:
            raise ValueError(
                f"LeaderElector {holder!r} on {name!r}: renew_every ({renew_every} s) must be > 0 and "
                f"below ttl - safety_margin ({ttl} - {margin} s), or the lease lapses between renewals"
            )
        if retry_every <= 0:
            raise ValueError(
                f"LeaderElector {holder!r} on {name!r}: retry_every must be > 0, got {retry_every}"
            )
        self.backend = backend
        self.name = name
        self.holder = holder
        self.clock = clock
        self.ttl = ttl
        self.renew_every = renew_every
        self.retry_every = retry_every
        self.safety_margin = margin
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self._leading = False
        self._epoch: int | None = None
        self._valid_until = 0.0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.elections = 0
        self.depositions = 0

    # -- state -----------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """True only while the lease is held *and* still inside its self-imposed validity."""
        return self._leading and self.clock.monotonic() < self._valid_until

    @property
    def epoch(self) -> int | None:
        """The epoch of the current (or last) term; stamp commands with it."""
        return self._epoch

    def fence(self) -> int:
        """The epoch to stamp on a command; raises :class:`NotLeader` if not leading now."""
        if not self.is_leader or self._epoch is None:
            raise NotLeader(f"{self.holder!r} does not hold lease {self.name!r}; not sending the command")
        return self._epoch

    # -- loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Campaign and renew until cancelled or :meth:`release` is called.

        Cancelling this task models a crash: the lease is *not* released and expires by itself.
        """
        self._stopping = False
        self._task = asyncio.current_task()
        try:
            while not self._stopping:
                if self._leading:
                    await self._lead_once()
                else:
                    await self._campaign_once()
        finally:
            self._task = None
            if self._leading and not self._stopping:
                self._leading = False  # crashed or cancelled: stop acting; lease lapses

    async def _call(self, coro: Awaitable[Lease | None], timeout: float | None) -> Lease | None:
        if timeout is None:
            return await coro
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that lands
        # as the inner call completes (an in-memory backend answers at once), and the elector
        # then campaigns on forever after being cancelled.
        async with asyncio.timeout(max(timeout, 0.0)):
            return await coro

    async def _campaign_once(self) -> None:
        sent = self.clock.monotonic()
        lease: Lease | None = None
        try:
            lease = await self._call(
                self.backend.try_acquire(self.name, self.holder, self.ttl, self.clock.time()),
                self.ttl - self.safety_margin,
            )
        except (LeaseBackendUnavailable, TimeoutError) as exc:
            log.warning("%s: campaign for %r failed: %r", self.holder, self.name, exc)
        if lease is not None and lease.holder == self.holder and not self._stopping:
            self._valid_until = sent + self.ttl - self.safety_margin
            if self.clock.monotonic() < self._valid_until:
                self._leading = True
                self._epoch = lease.epoch
                self.elections += 1
                self._next_renew = sent + self.renew_every
                log.info("%s: elected for %r, epoch %d", self.holder, self.name, lease.epoch)
                if self.on_elected is not None:
                    await _maybe_await(self.on_elected(lease.epoch))
                return
        await self.clock.sleep(self.retry_every)

    async def _lead_once(self) -> None:
        now = self.clock.monotonic()
        wake = min(self._next_renew, self._valid_until)
        if wake > now:
            await self.clock.sleep(wake - now)
        if self._stopping or not self._leading:
            return
        if self.clock.monotonic() >= self._valid_until:
            await self._depose("lease not renewed before its safety margin")
            return
        sent = self.clock.monotonic()
        epoch = self._epoch or 0
        try:
            lease = await self._call(
                self.backend.renew(self.name, self.holder, epoch, self.ttl, self.clock.time()),
                self._valid_until - sent,
            )
        except (LeaseBackendUnavailable, TimeoutError) as exc:
            log.warning("%s: renewing %r failed: %r", self.holder, self.name, exc)
            self._next_renew = self.clock.monotonic() + min(self.retry_every, self.renew_every)
            return
        if self._stopping or not self._leading:
            return
        if lease is None:
            await self._depose("lease lost (renewal refused)")
            return
        self._valid_until = sent + self.ttl - self.safety_margin
        self._next_renew = sent + self.renew_every

    async def _depose(self, reason: str) -> None:
        if not self._leading:
            return
        self._leading = False
        self.depositions += 1
        epoch = self._epoch or 0
        log.warning("%s: deposed from %r (epoch %d): %s", self.holder, self.name, epoch, reason)
        if self.on_deposed is not None:
            await _maybe_await(self.on_deposed(epoch))

    async def release(self) -> None:
        """Clean shutdown: stop campaigning and hand the lease back so a successor takes it now."""
        self._stopping = True
        was_leading = self._leading
        epoch = self._epoch
        if was_leading:
            await self._depose("released on shutdown")
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if was_leading and epoch is not None:
            with contextlib.suppress(LeaseBackendUnavailable):
                await self.backend.release(self.name, self.holder, epoch)


class FencedReceiver:
    """Receiver-side fencing: remembers the newest epoch per lease and drops older commands."""

    def __init__(self) -> None:
        self.newest: dict[str, int] = {}
        self.accepted = 0
        self.rejected = 0

    def accept(self, epoch: int, lease: str = "default") -> bool:
        """True if a command stamped ``epoch`` may be applied; False (and counted) if stale."""
        newest = self.newest.get(lease)
        if newest is not None and epoch < newest:
            self.rejected += 1
            return False
        self.newest[lease] = epoch
        self.accepted += 1
        return True


# ----------------------------------------------------------------------------------------------
# State handover
# ----------------------------------------------------------------------------------------------
@runtime_checkable
class StateStore(Protocol):
    """Fenced key/value state: what a leader persists and its successor loads."""

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        """Store ``value``; raises :class:`StaleEpoch` if a newer epoch already wrote ``key``."""

    async def load(self, key: str) -> dict[str, Any] | None:
        """The last saved value, or None."""


class MemoryStateStore:
    """Fenced state in a dict (tests, embedded runs without persistence)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[int, dict[str, Any]]] = {}

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        stored = self._data.get(key)
        if stored is not None and epoch < stored[0]:
            raise StaleEpoch(
                f"state {key!r}: write from epoch {epoch} refused, epoch {stored[0]} already wrote it"
            )
        self._data[key] = (epoch, json.loads(json.dumps(value)))

    async def load(self, key: str) -> dict[str, Any] | None:
        stored = self._data.get(key)
        return json.loads(json.dumps(stored[1])) if stored else None

    async def epoch_of(self, key: str) -> int | None:
        stored = self._data.get(key)
        return stored[0] if stored else None


class SqlStateStore:
    """Fenced state in ``forge_kv`` rows of one ``namespace``.

    ``value`` holds ``{"epoch": n, "data": {...}}`` as JSON: the table has no epoch column, so the
    fence lives in the document. A save is a compare-and-swap (``UPDATE ... WHERE value = <what
    was read>``) retried on conflict, so two writers can never both pass the epoch check; an
    INSERT's primary-key clash means a concurrent first write, and is retried the same way.
    """

    def __init__(
        self, engine: Engine, namespace: str, *, clock: Clock | None = None, create: bool = True
    ) -> None:
        self.engine = engine
        self.namespace = namespace
        self.clock = clock or RealClock()
        self.table = kv_table
        if create:  # the core migration creates it too; this serves stores used without migrations
            create_tables(engine, [kv_table])

    def _read(self, conn: sa.Connection, key: str) -> str | None:
        t = self.table
        return conn.execute(
            sa.select(t.c.value).where(t.c.namespace == self.namespace, t.c.key == key)
        ).scalar()

    def _save(self, key: str, value: dict[str, Any], epoch: int) -> None:
        t = self.table
        doc = json.dumps({"epoch": epoch, "data": value}, sort_keys=True, separators=(",", ":"))
        stamp = datetime.fromtimestamp(self.clock.time(), UTC)
        for _ in range(20):
            with self.engine.begin() as conn:
                old = self._read(conn, key)
                if old is not None:
                    stored_epoch = int(json.loads(old)["epoch"])
                    if epoch < stored_epoch:
                        raise StaleEpoch(
                            f"state {self.namespace}/{key}: write from epoch {epoch} refused, "
                            f"epoch {stored_epoch} already wrote it"
                        )
                    res = conn.execute(
                        sa.update(t)
                        .where(t.c.namespace == self.namespace, t.c.key == key, t.c.value == old)
                        .values(value=doc, updated_at=stamp)
                    )
                    if res.rowcount == 1:
                        return
                    continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.insert(t).values(namespace=self.namespace, key=key, value=doc, updated_at=stamp)
                    )
                return
            except sa.exc.IntegrityError:
                continue
        raise ForgeError(f"state {self.namespace}/{key}: gave up after 20 conflicting concurrent writes")

    def _load(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            raw = self._read(conn, key)
        return None if raw is None else json.loads(raw)["data"]

    async def save(self, key: str, value: dict[str, Any], *, epoch: int) -> None:
        self._save(key, value, epoch)

    async def load(self, key: str) -> dict[str, Any] | None:
        return self._load(key)

    async def epoch_of(self, key: str) -> int | None:
        with self.engine.connect() as conn:
            raw = self._read(conn, key)
        return None if raw is None else int(json.loads(raw)["epoch"])
