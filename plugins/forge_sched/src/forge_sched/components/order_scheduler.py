"""``sched.order_scheduler``: orders over REST, placed on factories, moved when a factory fails.

Run it with ``replicas: 2``: one holds the ``order_scheduler`` lease and acts (places orders, applies status reports,
answers ``mms.status_report`` and ``mms.capacity_query``), the other shadows (serves reads, stores new orders as pending for the leader to place).
Every leader transaction is fenced in the database (``sched_fences``: a deposed leader's late write is refused), and
every assignment change reaches the factories through the transactional outbox, after commit.

The decisions live in :mod:`forge_sched.orders` (service, planner, moves); this module wires them to the lease,
the bus, ``ctx.http`` and the gRPC servicer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import uuid
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa
from forge_core import Check, Component, Envelope, Publishes, Subscribes
from forge_core.tactics import NotLeader, RetryPolicy

from forge_sched.components import status_faces
from forge_sched.components.status_faces import FACTORY_CAPACITY, STATUS_REPORT_RESULT
from forge_sched.orders import commands, invariants, outbox
from forge_sched.orders.ids import v4_hex
from forge_sched.orders.moves import ASSIGNED, REVOKED, Topics
from forge_sched.orders.rest import OrdersApi
from forge_sched.orders.service import CREATED, OrderService
from forge_sched.orders.status import FactoryCapacity, StatusReportResult, invalid, validate_report
from forge_sched.orders.transactions import Conflict, Transactor
from forge_sched.settings import OrderSchedulerParams

#: The message types this component speaks besides CREATED/ASSIGNED/REVOKED (schemas in ``forge_sched/schemas``).
PROGRESS = "sched.order_progress"
COMPLETED = "sched.order_completed"
ENDPOINT = "sched.endpoint"
#: Types other plugins own, consumed when their topics are configured.
STATUS_REPORT = "mms.status_report"
CAPACITY_QUERY = "mms.capacity_query"
RISK_CHANGED = "mms.risk_changed"
FACTORY_HEARTBEAT = "mms.factory_heartbeat"

__all__ = ["ASSIGNED", "COMPLETED", "CREATED", "ENDPOINT", "FACTORY_CAPACITY", "PROGRESS", "REVOKED", "STATUS_REPORT_RESULT",
           "OrderScheduler"]


class OrderScheduler(Component):
    """Place orders on the UP factory with the most free capacity; move them when a factory fails."""

    Params = OrderSchedulerParams
    params: OrderSchedulerParams
    publishes = (Publishes(CREATED, param="topics.created"), Publishes(ASSIGNED, param="topics.assigned"),
                 Publishes(REVOKED, param="topics.revoked"),
                 Publishes(STATUS_REPORT_RESULT, param="topics.status_report_result"),
                 Publishes(FACTORY_CAPACITY, param="topics.status_report_result"),
                 Publishes(ENDPOINT, param="topics.endpoints"),
                 Publishes(commands.REPLY, param="topics.replies", key="requestId"),
                 Publishes("forge.leadership", topic="forge/leader/{lease}", key="lease"))
    subscribes = (Subscribes(PROGRESS, param="topics.progress"), Subscribes(COMPLETED, param="topics.completed"),
                  Subscribes(STATUS_REPORT, param="topics.status_report", shared=False),
                  Subscribes(CAPACITY_QUERY, param="topics.status_report", shared=False),
                  Subscribes(CREATED, param="topics.created", shared=False),
                  Subscribes(RISK_CHANGED, param="topics.risk", shared=False),
                  Subscribes(FACTORY_HEARTBEAT, param="topics.heartbeats", shared=False),
                  Subscribes(commands.REQUEST, param="topics.requests", shared=False))

    async def start(self) -> None:
        p = self.params
        t = p.topics
        policy = RetryPolicy(max_attempts=p.retry.max_attempts, initial=p.retry.initial,
                             max_backoff=p.retry.max_backoff, retry_on=(Conflict,), clock=self.ctx.clock,
                             seed=self.ctx.random.getrandbits(32))
        virtual = getattr(self.ctx.clock, "is_virtual", False)
        # a simulated run keeps one connection for its transactions, probe and relay (see Transactor)
        self.transactor = Transactor(self.ctx.storage, policy, keep_connection=virtual)
        if virtual:
            self.ctx.at_end(self.transactor.close, name="connection")  # stopped, crashed or killed: none leaks
        self.ctx.at_end(self.transactor.write_progress, name="progress")  # before the connection goes
        if virtual:  # ids from the seed, so it replays: one stream for all the lives (a revived life that began it
            seed = self.ctx.random.getrandbits(64)  # again tested every id its earlier lives stored, IdDraw)
            ids = self.ctx.tactics.shared(f"forge_sched.order_ids:{self.name}", lambda: random.Random(seed))
            new_id: Any = lambda: "ord-" + v4_hex(ids.getrandbits(128))
        else:
            new_id = lambda: "ord-" + uuid.uuid4().hex
        self.elector = self.ctx.elector(p.lease, on_elected=self.on_elected, on_deposed=self.on_deposed)
        self.service = OrderService(
            self.transactor, topics=Topics(t.assigned, t.revoked), created_topic=t.created, now=self.ctx.clock.time,
            new_id=new_id, default_capacity=p.default_capacity,
            writer_fence=f"writer:{p.lease}", leader_epoch=self.elector.fence)
        self.ready_epoch: int | None = None
        self.known: set[str] = set()
        self.relay_lock = asyncio.Lock()
        self.counts = {"relayed": 0, "invalid_reports": 0, "not_leader_reports": 0, "failed_reports": 0,
                       "bad_messages": 0, "risk_updates": 0}
        #: Epochs accepted per reporter lease, in order (the fencing check reads them).
        self.accepted_epochs: dict[str, list[int]] = {}

        self.mounted: bool | None = None  # REST on ctx.http; None: not yet (the path is another replica's)
        self.mount_refused = False
        self.api = OrdersApi(self.service, leading=lambda: self.leading, after_write=self.relay,
                             max_body_bytes=p.max_body_bytes, page_limit=p.page_limit)
        await self.ctx.subscribe(t.progress, self.on_progress, types=[PROGRESS])
        await self.ctx.subscribe(t.completed, self.on_completed, types=[COMPLETED])
        await self.ctx.subscribe(t.status_report, self.on_status_report, types=[STATUS_REPORT], shared=False)
        await self.ctx.subscribe(t.status_report, self.on_capacity_query, types=[CAPACITY_QUERY], shared=False)
        await self.ctx.subscribe(t.created, self.on_created, types=[CREATED], shared=False)
        if t.risk:
            await self.ctx.subscribe(t.risk, self.on_risk, types=[RISK_CHANGED], shared=False)
        if t.heartbeats:
            await self.ctx.subscribe(t.heartbeats, self.on_heartbeat, types=[FACTORY_HEARTBEAT], shared=False)
        if t.requests:  # orders over messages (create/change/cancel/get), see forge_sched.orders.commands
            await self.ctx.subscribe(t.requests, self.on_order_request, types=[commands.REQUEST], shared=False)
        #: (transactor changes, leads, epoch) when the last probe found no work: none until they move or next_probe
        self.probed_idle: tuple[int, bool, int | None] | None = None
        self.next_probe = 0.0
        self.ctx.every(p.schedule_interval, self.tick, name="schedule")
        await self._serve()
        if t.endpoints:
            self.ctx.every(p.announce_every, self._announce_pass, name="announce")

    async def _mount(self) -> None:
        """Mount the REST API on ``ctx.http``. Two replicas in one process share one server: the second
        finds the path taken and tries again each tick, so it serves once the first one stops."""
        if self.mounted is not None:
            return
        try:
            http = self.ctx.http
            if self.mount_refused and http.is_mounted(self.params.rest_path):
                return  # still served by another replica: asked, not refused (and formatted) each pass
            await http.mount(self.params.rest_path, self.api.app)
            self.mounted = True
        except RuntimeError:
            self.mounted = False
            self.ctx.log.info("no HTTP server in this runtime: REST not served")
        except ValueError as exc:
            if not self.mount_refused:
                self.ctx.log.info("REST not mounted here (yet): %s", exc)
            self.mount_refused = True

    async def _serve(self) -> None:
        """The REST API on ``ctx.http`` and the status servicer on ``ctx.grpc``, where the runtime has them."""
        await self._mount()
        if importlib.util.find_spec("forge_sched.grpc.servicer") is None:
            return
        from forge_sched.grpc import servicer  # the gRPC face of report_factory_status

        register = getattr(servicer, "register", None)  # see the industry40 contract
        if register is None:
            self.ctx.log.warning("forge_sched.grpc.servicer has no register(ctx, handler): gRPC not served")
            return
        try:
            await register(self.ctx, self)
        except RuntimeError:
            self.ctx.log.info("no gRPC server in this runtime: FactoryStatusService not served")

    # -- leadership --------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """Leads *and* has taken over (fence moved, factories configured) for this epoch."""
        return self.ready_epoch is not None and self.elector.is_leader and self.elector.epoch == self.ready_epoch

    async def on_elected(self, epoch: int) -> None:
        await self.service.configure_factories(self.params.capacities)  # moves the writer fence to our epoch
        with self.transactor.engine.connect() as conn:
            self.known = set(conn.execute(sa.text("SELECT id FROM factories")).scalars())
        self.ready_epoch = epoch
        await self.relay(left=True)
        self.ctx.log.info("leading order scheduling with epoch %d; %d factories known", epoch, len(self.known))
        await self.announce()

    async def on_deposed(self, epoch: int) -> None:
        self.ready_epoch = None
        await self.announce()

    async def announce(self) -> None:
        """``sched.endpoint``: where this replica's REST and gRPC answer and whether it leads, so callers
        find the leader among replicas on ephemeral ports. Only while listening on a socket (nothing
        under virtual time, where callers reach the handlers in-process)."""
        endpoint = self._endpoint()
        if endpoint is None:
            return
        topic, http, grpc_target = endpoint
        await self.ctx.publish(topic, ENDPOINT, {"instance": self.name, "http": http, "grpc": grpc_target,
                                                 "leading": self.leading, "epoch": self.elector.epoch,
                                                 "lease": self.params.lease}, key=self.name)

    def _endpoint(self) -> tuple[str, str | None, str | None] | None:
        """(topic, REST url, gRPC target) to announce, or None: no topic, or not listening on a socket."""
        topic = self.params.topics.endpoints
        http = self.ctx.http.url if self.mounted else None
        grpc_target = getattr(getattr(self.ctx, "grpc", None), "target", None)
        if topic is None or (http is None and grpc_target is None):
            return None
        return topic, http, grpc_target

    def _announce_pass(self) -> Awaitable[None] | None:
        """:meth:`announce` for ``ctx.every``: sync where there is nothing to announce (virtual time)."""
        return self.announce() if self._endpoint() is not None else None

    def tick(self) -> Awaitable[None] | None:
        """The periodic pass: place pending orders (leader) and relay queued messages. Both happen on each event
        already; this catches what another process left (an order the shadow stored, a crash between commit and
        relay), so it first asks the database in one read whether there is anything to do. Sync but what waits."""
        # not mounted yet: mount (again), unless another replica still serves the path (asked each pass)
        if self.mounted is None and not (self.mount_refused and self.ctx.http.is_mounted(self.params.rest_path)):
            return self._mount_and_pass()
        return self._pass()

    async def _mount_and_pass(self) -> None:
        await self._mount()
        rest = self._pass()
        if rest is not None:
            await rest

    def _pass(self) -> Awaitable[None] | None:
        now = self.ctx.clock.time()
        if self.transactor.progress.due(now, self.params.progress_delay):
            try:
                self.transactor.write_progress()  # no transaction came by to take them
            except (Conflict, sa.exc.OperationalError) as exc:  # they wait for the next one
                self.ctx.log.warning("progress reports not written yet: %s", exc)
        state = (self.transactor.changes, self.elector.is_leader, self.elector.epoch)
        if state == self.probed_idle and now < self.next_probe:
            return None  # no write in this process since a probe found nothing (see probe_every)
        seen = self.transactor.idle_since()  # or since another replica's read here found no work at all
        if seen is not None and now < seen + self.params.probe_every:
            self._probed(state, seen, idle=True)  # taken as this replica's own read of that instant
            return None
        pending, queued = self.service.probe()
        if pending and self.leading:
            return self._place(state, now, queued)
        self._probed(state, now, idle=not (pending or queued))
        return self.relay(left=True) if queued else None

    async def _place(self, state: tuple[int, bool, int | None], now: float, queued: bool) -> None:
        placed = await self._leader_write(self.service.assign_pending)
        # none placed or queued: the pending wait for capacity, which a commit (counted) or another process brings
        self._probed(state, now, idle=placed == 0 and not queued)
        if queued or placed != 0:
            await self.relay(left=True)

    def _probed(self, state: tuple[int, bool, int | None], now: float, *, idle: bool) -> None:
        self.probed_idle, self.next_probe = state if idle else None, now + self.params.probe_every

    async def _leader_write(self, work: Any, *args: Any) -> Any:
        """A leader's write: NotLeader (deposed meanwhile) and a lost conflict are logged, not crashes."""
        try:
            return await work(*args)
        except NotLeader as exc:
            self.ready_epoch = None
            self.ctx.log.warning("not leading any more: %s", exc)
        except Conflict as exc:
            self.ctx.log.warning("%s lost to concurrent transactions %d times: %s", getattr(work, "__name__", work),
                                 self.params.retry.max_attempts, exc)
        return None

    async def relay(self, *, left: bool = False) -> None:
        """Publish what committed transactions queued (one relay at a time in this process): after an
        event, only if this process queued a message since a relay last emptied the outbox (nothing
        read otherwise); ``left``: whatever is queued, another process's leftovers too (the pass, after
        its probe found messages, and a new leader)."""
        async with self.relay_lock:
            self.counts["relayed"] += await outbox.relay(self.transactor.engine, self._publish,
                                                         connect=self.transactor.connect, only_new=not left)

    async def _publish(self, topic: str, type_: str, payload: dict[str, Any], key: str | None) -> None:
        await self.ctx.publish(topic, type_, payload, key=key)

    # -- status reports (gRPC servicer and bus) ----------------------------------------------------
    async def report_factory_status(self, factory_id: object, status: object, reason: object, epoch: object,
                                    lease: object) -> StatusReportResult:
        """The one entry of a factory status (see :class:`~forge_sched.orders.status.StatusHandler`), raw values."""
        problem = validate_report(factory_id, status, reason, epoch, lease)
        if problem is None and epoch is None and self.params.require_epoch:
            problem = invalid("epoch", "a fencing epoch is required (forge-epoch metadata / epoch field)")
        if problem is not None:
            self.counts["invalid_reports"] += 1
            return problem
        assert isinstance(factory_id, str) and isinstance(status, str) and isinstance(reason, str)  # validated
        assert (epoch is None or isinstance(epoch, int)) and (lease is None or isinstance(lease, str))
        if not self.leading:
            self.counts["not_leader_reports"] += 1
            return StatusReportResult(False, f"{self.name} does not lead {self.params.lease!r}; retry", 0, "not_leader")
        name = lease or "default"
        try:
            result = await self.service.report_status(factory_id, status, reason, epoch, name)
        except NotLeader as exc:
            self.ready_epoch = None
            self.counts["not_leader_reports"] += 1
            return StatusReportResult(False, str(exc), 0, "not_leader")
        except (Conflict, sa.exc.OperationalError) as exc:
            self.counts["failed_reports"] += 1
            return StatusReportResult(False, f"database unavailable, retry: {exc}", 0, "unavailable")
        if result.accepted:
            self.known.add(factory_id)
            if epoch is not None:
                self.accepted_epochs.setdefault(name, []).append(epoch)
            await self.relay()
        self.ctx.log.info("status %s %s (epoch %s of %s): %s", factory_id, status, epoch, name, result.detail)
        return result

    async def on_status_report(self, envelope: Envelope) -> None:
        await status_faces.answer_status_report(self, envelope)

    async def factory_capacity(self) -> list[FactoryCapacity]:
        """Every factory's capacity, load and free capacity (GET /factories's read), leader or shadow."""
        return status_faces.factory_capacity(self)

    async def on_capacity_query(self, envelope: Envelope) -> None:
        await status_faces.answer_capacity_query(self, envelope)

    # -- orders over messages ----------------------------------------------------------------------
    async def on_order_request(self, envelope: Envelope) -> None:
        """``sched.order_request`` -> ``sched.order_reply`` (the leader answers; the requester retries)."""
        if not self.leading:
            return
        try:
            reply = await commands.handle(self.service, envelope.payload, assign=True)
        except NotLeader as exc:
            self.ready_epoch = None
            reply = commands.handle_error(envelope.payload, "not_leader", str(exc))
        except (Conflict, sa.exc.OperationalError) as exc:
            reply = commands.handle_error(envelope.payload, "unavailable", f"database unavailable, retry: {exc}")
        self.counts["order_requests"] = self.counts.get("order_requests", 0) + 1
        await self.relay()
        await self.ctx.publish(self.params.topics.replies, commands.REPLY, reply, key=reply["requestId"] or None)

    # -- what factories and the MMS say ------------------------------------------------------------
    def _ids(self, envelope: Envelope) -> tuple[str, str] | None:
        body = envelope.payload if isinstance(envelope.payload, dict) else {}
        order_id, factory_id = body.get("orderId"), body.get("factoryId")
        if not (isinstance(order_id, str) and isinstance(factory_id, str) and order_id and factory_id):
            self.counts["bad_messages"] += 1
            self.ctx.log.warning("%s on %s without orderId/factoryId strings: ignored", envelope.type, envelope.topic)
            return None
        return order_id, factory_id

    async def on_progress(self, envelope: Envelope) -> None:
        ids = self._ids(envelope)
        progress = envelope.payload.get("progress") if ids else None
        if ids is None or isinstance(progress, bool) or not isinstance(progress, int | float):
            return
        await self.service.progress(ids[0], ids[1], float(progress), defer=self.params.progress_delay > 0)

    async def on_completed(self, envelope: Envelope) -> None:
        ids = self._ids(envelope)
        if ids is None:
            return
        # the leader places what waits on the freed capacity in the completion's transaction
        outcome = await self.service.complete(*ids, place=self.leading)
        if outcome == "completed":
            if isinstance(self.service.placed, NotLeader):
                self.ready_epoch = None
                self.ctx.log.warning("not leading any more: %s", self.service.placed)
            await self.relay()
        else:
            self.ctx.log.info("completion of %s by %s: %s", ids[0], ids[1], outcome)

    async def on_created(self, envelope: Envelope) -> None:
        if self.leading and envelope.source != self.name and envelope.payload.get("status") == "pending":
            await self._leader_write(self.service.assign_pending)
            await self.relay()

    async def on_risk(self, envelope: Envelope) -> None:
        body = envelope.payload if isinstance(envelope.payload, dict) else {}
        factory_id, risk = body.get("factoryId"), body.get("risk")
        if not self.leading or not isinstance(factory_id, str) or risk not in ("LOW", "MEDIUM", "HIGH"):
            return
        if validate_report(factory_id, "UP", "", None, None) is None:
            self.counts["risk_updates"] += 1
            await self._leader_write(self.service.set_risk, factory_id, risk)

    async def on_heartbeat(self, envelope: Envelope) -> None:
        body = envelope.payload if isinstance(envelope.payload, dict) else {}
        factory_id = body.get("factoryId")
        # a known factory's beat first (nearly every beat, on both replicas): `leading` reads the clock
        if not isinstance(factory_id, str) or factory_id in self.known or not self.leading:
            return
        if validate_report(factory_id, "UP", "", None, None) is not None:
            self.counts["bad_messages"] += 1
            return
        if await self._leader_write(self.service.see_factory, factory_id):
            self.ctx.log.info("new factory %s (capacity %d) from its heartbeat", factory_id,
                              self.params.default_capacity)
        self.known.add(factory_id)
        await self.relay()

    # -- report and checks -------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"leading": self.leading, "epoch": self.elector.epoch, "known_factories": len(self.known)}

    def report(self) -> dict[str, Any]:
        return {**self.service.stats, **self.counts, **self.api.requests, "conflicts": self.transactor.conflicts,
                "retries": self.transactor.policy.stats.retries}

    def checks(self) -> list[Check]:
        return invariants.checks(self.transactor.engine, self.service.stats, self.accepted_epochs)
