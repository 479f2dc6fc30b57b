"""The leader elector: campaigns for a lease, renews it, and deposes itself before it can lapse."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from forge_core.clock import Clock
from forge_core.tactics.leader.lease import Lease, LeaseBackend, LeaseBackendUnavailable, NotLeader

__all__ = ["Callback", "LeaderElector"]

# The package's name, as before the split, so logging configuration and captured records match.
log = logging.getLogger("forge_core.tactics.leader")

Callback = Callable[[int], Any]
T = TypeVar("T")


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


def _at_once(call: Coroutine[Any, Any, T]) -> T:
    """The result of a backend's call that returns without suspending (``answers_at_once``), run here."""
    try:
        call.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    call.close()
    raise RuntimeError(f"{call!r} suspended: a backend that answers at once must not wait")


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
        self._timer: Any = None  # run_on_timer's timer (it has cancel())
        self._asleep_leading = False  # run_on_timer: the sleep that ends next is a leader's (until its renewal)
        # A backend in this process that answers without waiting (the memory backend) needs no
        # deadline: the timeout's timer was ~3 % of industry40's simulated hour (2 campaigns a second).
        # Declared by the class itself: a subclass (a test's hanging backend) does not inherit it.
        self.answers_at_once = bool(vars(type(backend)).get("answers_at_once", False))
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
            self._crashed()  # crashed or cancelled: stop acting; lease lapses

    async def _call(self, coro: Awaitable[Lease | None], timeout: float | None) -> Lease | None:
        if timeout is None or self.answers_at_once:
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
        epoch = self._won(lease, sent)
        if epoch is not None:
            if self.on_elected is not None:
                await _maybe_await(self.on_elected(epoch))
            return
        await self.clock.sleep(self.retry_every)

    def _won(self, lease: Lease | None, sent: float) -> int | None:
        """The epoch if the campaign's answer (asked at ``sent``) makes this holder the leader (it leads)."""
        if lease is not None and lease.holder == self.holder and not self._stopping:
            self._valid_until = sent + self.ttl - self.safety_margin
            if self.clock.monotonic() < self._valid_until:
                self._leading = True
                self._epoch = lease.epoch
                self.elections += 1
                self._next_renew = sent + self.renew_every
                log.info("%s: elected for %r, epoch %d", self.holder, self.name, lease.epoch)
                return lease.epoch
        return None

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
        await _maybe_await(self._renewed(lease, sent))

    def _renewed(self, lease: Lease | None, sent: float) -> Any:
        """The renewal's answer (asked at ``sent``): the term extended, or ended (``_step_down``'s result)."""
        if self._stopping or not self._leading:
            return None
        if lease is None:
            return self._step_down("lease lost (renewal refused)")
        self._valid_until = sent + self.ttl - self.safety_margin
        self._next_renew = sent + self.renew_every
        return None

    # -- the loop on a timer callback (a backend that answers at once) -----------------------
    def run_on_timer(self, timer: Callable[..., Any]) -> None:
        """:meth:`run`'s loop without a task: ``timer(interval, fn, initial_delay=, name=)`` (the
        component's ``ctx.timer``) calls the loop from the end of one sleep to the start of the next, the
        backend's calls run to their end there (``answers_at_once``: they never suspend), what ``on_elected``
        or ``on_deposed`` return awaited in a task before the next sleep. :meth:`release` ends it; a call
        that raises crashes the component, as :meth:`run`'s task would."""
        self._stopping = False
        self._asleep_leading = False
        self._timer = timer(self.retry_every, self._on_timer, initial_delay=0.0, name=f"elector:{self.name}")

    def _on_timer(self) -> float | Awaitable[float | None] | None:
        try:
            after: Any = None
            if self._asleep_leading:  # _lead_once's sleep ended: the rest of it
                self._asleep_leading = False
                after = self._renew_at_once()
                if after is not None and inspect.isawaitable(after):
                    return self._resume(after)
            after = self._to_next_sleep()
            if after is None or type(after) is float:  # a sleep's length, or stopping: nearly every call
                return after
            return self._resume(after) if inspect.isawaitable(after) else after
        except Exception:
            self._crashed()
            raise

    def _crashed(self) -> None:
        """As :meth:`run`'s end when its task fails: stop acting; the lease lapses (not released)."""
        if self._leading and not self._stopping:
            self._leading = False

    def _to_next_sleep(self) -> Any:
        """:meth:`run`'s loop up to its next sleep: the sleep's length, or what a callback returned if it is
        awaitable (the loop goes on after it: :meth:`_resume`); ``None`` once stopping (the timer cancelled)."""
        while not self._stopping:
            pending: Any = None
            if self._leading:  # _lead_once
                now = self.clock.monotonic()
                wake = min(self._next_renew, self._valid_until)
                if wake > now:
                    self._asleep_leading = True
                    return wake - now
                pending = self._renew_at_once()
            else:  # _campaign_once
                sent = self.clock.monotonic()
                lease: Lease | None = None
                try:
                    lease = _at_once(self.backend.try_acquire(self.name, self.holder, self.ttl, self.clock.time()))
                except LeaseBackendUnavailable as exc:
                    log.warning("%s: campaign for %r failed: %r", self.holder, self.name, exc)
                epoch = self._won(lease, sent)
                if epoch is None:
                    return self.retry_every
                if self.on_elected is not None:
                    pending = self.on_elected(epoch)
            if pending is not None and inspect.isawaitable(pending):
                return pending
        if self._timer is not None:  # stopping, not released yet (release() drops the timer)
            self._timer.cancel()
        return None

    async def _resume(self, pending: Awaitable[Any]) -> float | None:
        """Await a callback's result, then go on with the loop up to its next sleep (its length)."""
        try:
            while True:
                await pending
                after = self._to_next_sleep()
                if after is None or not inspect.isawaitable(after):
                    return after
                pending = after
        except BaseException:  # an error, or the timer cancelled (the component's end) while it waits
            self._crashed()
            raise

    def _renew_at_once(self) -> Any:
        """The rest of :meth:`_lead_once` after its sleep, the backend's answer taken at once."""
        if self._stopping or not self._leading:
            return None
        if self.clock.monotonic() >= self._valid_until:
            return self._step_down("lease not renewed before its safety margin")
        sent = self.clock.monotonic()
        try:
            lease = _at_once(self.backend.renew(self.name, self.holder, self._epoch or 0, self.ttl, self.clock.time()))
        except LeaseBackendUnavailable as exc:
            log.warning("%s: renewing %r failed: %r", self.holder, self.name, exc)
            self._next_renew = self.clock.monotonic() + min(self.retry_every, self.renew_every)
            return None
        return self._renewed(lease, sent)

    async def _depose(self, reason: str) -> None:
        await _maybe_await(self._step_down(reason))

    def _step_down(self, reason: str) -> Any:
        """Stop leading (if it leads): what ``on_deposed`` returned, to await if awaitable."""
        if not self._leading:
            return None
        self._leading = False
        self.depositions += 1
        epoch = self._epoch or 0
        log.warning("%s: deposed from %r (epoch %d): %s", self.holder, self.name, epoch, reason)
        return None if self.on_deposed is None else self.on_deposed(epoch)

    async def release(self) -> None:
        """Clean shutdown: stop campaigning and hand the lease back so a successor takes it now."""
        self._stopping = True
        was_leading = self._leading
        epoch = self._epoch
        if self._timer is not None:  # dropped too: it holds the component's context (no cycle left)
            self._timer.cancel()
            self._timer = None
        if was_leading:
            await self._depose("released on shutdown")
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if was_leading and epoch is not None:
            with contextlib.suppress(LeaseBackendUnavailable):
                await self.backend.release(self.name, self.holder, epoch)
