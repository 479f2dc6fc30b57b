"""The leader elector: campaigns for a lease, renews it, and deposes itself before it can lapse."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from forge_core.clock import Clock
from forge_core.tactics.leader.lease import Lease, LeaseBackend, LeaseBackendUnavailable, NotLeader

__all__ = ["Callback", "LeaderElector"]

# The package's name, as before the split, so logging configuration and captured records match.
log = logging.getLogger("forge_core.tactics.leader")

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
        # A backend in this process that answers without waiting (the memory backend) needs no
        # deadline: the timeout's timer was ~3 % of industry40's simulated hour (2 campaigns a second).
        # Declared by the class itself: a subclass (a test's hanging backend) does not inherit it.
        self._answers_at_once = bool(vars(type(backend)).get("answers_at_once", False))
        self.elections = 0
        self.depositions = 0

    # -- state -----------------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """True only while the lease is held *and* still inside its self-imposed validity."""
        return self._leading and self.clock.monotonic() < self._valid_until

    @property
    def valid_until_time(self) -> float:
        """When (``clock.time()``) this term's self-imposed validity ends, or ended: a term's true end
        when the lease lapsed, however late a starved event loop noticed it and called ``on_deposed``."""
        return self.clock.time() + (self._valid_until - self.clock.monotonic())

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
        if timeout is None or self._answers_at_once:
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
