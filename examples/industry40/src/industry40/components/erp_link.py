"""``industry40.erp_link``: the ERP's production requests become orders of the PMS, and the PMS's
completed orders go back to the ERP as performance documents.

forge-b2mml and forge-sched never import each other; this plant component translates between their
messages:

* ``b2mml.production_request`` (a request of an imported schedule) -> ``sched.order_request`` create,
  ``idempotencyKey`` from the B2MML IDs: a schedule sent again creates nothing;
* ``b2mml.request_action`` (the ERP's Change / Cancel / Get) -> ``sched.order_request`` change /
  cancel / get of the order with that key;
* ``sched.order_reply`` -> the order's id and status; for an action, ``b2mml.request_state`` (the
  exporter answers the ERP with Show / Respond);
* ``sched.order_completed`` (a factory finished) -> ``sched.order_request`` get; once the PMS says
  ``completed``: ``b2mml.order_completed`` (the exporter builds, validates and sends the
  performance document, once per order).

A request the PMS has not answered (no leader, e.g. a killed PMS) is sent again every
``retry_every`` with the same ``requestId``; every action is safe to repeat. What this component
remembers (its requests, which order serves which, the asks not answered yet) is also written to the
plant's database (:mod:`industry40.components.erp_state`) before anything is published: a killed
link, restarted, loads it, sends its unanswered asks again and asks the PMS how each open order
stands (a completion it missed while dead is exported then; the exporter's ledger refuses a second
export of an order, in SQL).

Its checks are the ERP side of the run: every request the B2MML ledger imported is accounted for
(an order completed, running, pending or cancelled, or refused with a reason), and every completed
order is exported exactly once — one validated document in the outbox per completed order, none
for anything else.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from forge_b2mml import B2mmlError, Ledger, load

from forge_core import Check, Component, Envelope, Publishes, Subscribes
from industry40.components.erp_state import Ask, LinkState, Tracked
from industry40.settings import ErpLinkParams

REQUEST = "b2mml.production_request"
ACTION = "b2mml.request_action"
STATE = "b2mml.request_state"
B2MML_COMPLETED = "b2mml.order_completed"
ORDER_REQUEST = "sched.order_request"
ORDER_REPLY = "sched.order_reply"
ORDER_COMPLETED = "sched.order_completed"
ORDER_PROGRESS = "sched.order_progress"

#: The PMS's order statuses as B2MML RequestState values.
STATE_OF = {"pending": "Waiting", "assigned": "Ready", "in_progress": "Running", "completed": "Completed",
            "cancelled": "Cancelled"}
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def order_key(request_key: str) -> str:
    """The PMS idempotency key of a B2MML request key (hashed when B2MML IDs hold spaces or run long)."""
    if _KEY.match(request_key):
        return request_key
    return "b2mml:" + hashlib.sha256(request_key.encode()).hexdigest()[:40]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ErpLink(Component):
    Params = ErpLinkParams
    params: ErpLinkParams
    publishes = (Publishes(ORDER_REQUEST, param="order_requests", key="requestId"),
                 Publishes(STATE, param="states_topic"), Publishes(B2MML_COMPLETED, param="completion_topic"))
    subscribes = (Subscribes(REQUEST, param="requests_topic"), Subscribes(ACTION, param="actions_topic"),
                  Subscribes(ORDER_REPLY, param="order_replies"),
                  Subscribes(ORDER_COMPLETED, param="factory_completions", shared=False))

    async def start(self) -> None:
        p = self.params
        self.state = LinkState(self.ctx.storage)
        self.requests: dict[str, Tracked]  # B2MML request key -> tracked
        asks: dict[str, Ask]
        self.requests, asks = self.state.load()  # empty unless this is a restart
        self.by_order: dict[str, str] = {t.order_id: k for k, t in self.requests.items() if t.order_id}
        self.outstanding: dict[str, tuple[dict[str, Any], float]] = {  # requestId -> (body, last sent)
            rid: (a.body, a.sent) for rid, a in asks.items()}
        self.actions: dict[str, dict[str, Any]] = {  # requestId -> the b2mml.request_action it serves
            rid: a.action for rid, a in asks.items() if a.action is not None}
        self.counts: Counter[str] = Counter()
        if self.requests:
            self.counts["restored"] = len(self.requests)
            await self._reconcile()
        await self.ctx.subscribe(p.requests_topic, self.on_request, types=[REQUEST])
        await self.ctx.subscribe(p.actions_topic, self.on_action, types=[ACTION])
        await self.ctx.subscribe(p.order_replies, self.on_reply, types=[ORDER_REPLY])
        await self.ctx.subscribe(p.factory_completions, self.on_completed, types=[ORDER_COMPLETED], shared=False)
        self.ctx.every(p.retry_every, self.resend, name="resend")

    async def _reconcile(self) -> None:
        """After a restart: ask again for what was never asked (killed in between) and how each open
        order stands (completions published while this process was dead were not seen)."""
        asked = {body.get("idempotencyKey") or body.get("orderId") for body, _ in self.outstanding.values()}
        for key, tracked in self.requests.items():
            if tracked.status == "requested" and tracked.quantity is not None and tracked.quantity > 0 \
                    and order_key(key) not in asked:
                await self._create(tracked)
            elif tracked.order_id and not tracked.exported and tracked.status not in ("cancelled", "refused") \
                    and tracked.order_id not in asked:
                self.counts["reconciled"] += 1
                await self.ask(f"get:{tracked.order_id}", {"action": "get", "orderId": tracked.order_id})

    # -- to the PMS --------------------------------------------------------------------------------
    async def ask(self, request_id: str, body: dict[str, Any], action: dict[str, Any] | None = None) -> None:
        request_id = request_id if len(request_id) <= 200 else hashlib.sha256(request_id.encode()).hexdigest()
        body = {"requestId": request_id, **body}
        now = self.ctx.clock.time()
        self.state.put_ask(request_id, Ask(body, now, action))  # before it leaves: a kill after it resends it
        self.outstanding[request_id] = (body, now)
        if action is not None:
            self.actions[request_id] = action
        self.counts["asked"] += 1
        await self.ctx.publish(self.params.order_requests, ORDER_REQUEST, body, key=request_id)

    def resend(self) -> Awaitable[None] | None:
        """Ask again what got no answer for ``retry_every`` s: the publishes, to await, or ``None`` when nothing
        is that old. Sync, so ``ctx.every`` calls it on a timer callback, not in a task woken each time."""
        now = self.ctx.clock.time()
        limit = self.params.retry_every
        due = [(request_id, body) for request_id, (body, sent) in self.outstanding.items() if now - sent >= limit]
        if not due:
            return None
        for request_id, body in due:
            self.outstanding[request_id] = (body, now)
        self.counts["resent"] += len(due)
        return self._ask_again(due)

    async def _ask_again(self, due: list[tuple[str, dict[str, Any]]]) -> None:
        for request_id, body in due:
            await self.ctx.publish(self.params.order_requests, ORDER_REQUEST, body, key=request_id)

    # -- from the ERP ------------------------------------------------------------------------------
    async def on_request(self, envelope: Envelope) -> None:
        request = envelope.payload
        key = envelope.key or f"request:{request['version']}:{request.get('schedule_id') or ''}:{request['request_id']}"
        if key in self.requests:
            return  # published again after a crash of the inbox: asked already
        tracked = Tracked.of(key, request, self.ctx.clock.time())
        if tracked.quantity is None or tracked.quantity <= 0:
            tracked.status, tracked.detail = "refused", "no positive numeric quantity of material produced"
        if not self.state.add_request(tracked):
            return  # recorded by an earlier life of this link (it asked then, or its restart did)
        self.requests[key] = tracked
        self.counts["requests"] += 1
        if tracked.status != "refused":
            await self._create(tracked)

    async def _create(self, tracked: Tracked) -> None:
        request, quantity = tracked.request, tracked.quantity or 0
        start = _epoch(request.get("start_time")) or self.ctx.clock.time()
        deadline = request.get("end_time") or _iso(start + self.params.lead_time)
        await self.ask(f"create:{tracked.key}", {"action": "create", "idempotencyKey": order_key(tracked.key),
                                                 "productType": (tracked.material or "unspecified")[:100],
                                                 "quantity": math.ceil(quantity), "deadline": deadline})

    async def on_action(self, envelope: Envelope) -> None:
        action = envelope.payload
        body: dict[str, Any] = {"action": action["action"], "idempotencyKey": order_key(action["key"])}
        if action["action"] == "change":
            if action.get("quantity"):
                body["quantity"] = math.ceil(action["quantity"])
            if action.get("end_time"):
                body["deadline"] = action["end_time"]
        request_id = f"{action['action']}:{action['transaction']}:{action['key']}"
        self.counts[f"action_{action['action']}"] += 1
        await self.ask(request_id, body, action)

    # -- from the PMS and the factories ------------------------------------------------------------
    async def on_reply(self, envelope: Envelope) -> None:
        reply = envelope.payload
        request_id = reply.get("requestId")
        if request_id not in self.outstanding or reply.get("code") in ("not_leader", "unavailable"):
            return  # another link's, a repeat, or "retry": resent on schedule
        body, _ = self.outstanding.pop(request_id)
        self.counts[f"reply_{reply.get('code')}"] += 1
        order = reply.get("order") or {}
        key = self.by_order.get(order.get("orderId", "")) or self._key_of(order.get("idempotencyKey"))
        tracked = self.requests.get(key) if key else None
        if tracked is not None and order:
            tracked.order_id = order["orderId"]
            tracked.status = "completed" if tracked.exported else order["status"]
            self.by_order[order["orderId"]] = tracked.key
            if order["status"] == "completed" and tracked.completed_at is None:
                tracked.completed_at = self.ctx.clock.time()  # completed while this link was not listening
            self.state.save(tracked)
        if body["action"] == "create" and tracked is None and not reply.get("ok"):
            refused = self.requests.get(request_id.removeprefix("create:"))
            if refused is not None:
                refused.status, refused.detail = "refused", str(reply.get("detail"))
                self.state.save(refused)
        action = self.actions.pop(request_id, None)
        if action is not None:
            await self._answer(action, reply, order)
        if tracked is not None and order.get("status") == "completed" and not tracked.exported:
            await self._export(tracked, order)
        elif body["action"] == "get" and tracked is not None and tracked.completed_at is not None \
                and not tracked.exported and order.get("status") in ("pending", "assigned", "in_progress"):
            # a factory said completed, the PMS not yet: both read the completion from the broker, and the
            # PMS may answer before it applied it (another process, another consumer). Asked again.
            self.counts["completion_pending"] += 1
            self.outstanding[request_id] = (body, self.ctx.clock.time())
            return
        self.state.drop_ask(request_id)  # answered, and what the answer asked for is published

    def _key_of(self, idempotency_key: str | None) -> str | None:
        if idempotency_key is None:
            return None
        if idempotency_key in self.requests:
            return idempotency_key
        return next((k for k in self.requests if order_key(k) == idempotency_key), None)

    async def _answer(self, action: dict[str, Any], reply: dict[str, Any], order: dict[str, Any]) -> None:
        found = bool(order)
        await self.ctx.publish(self.params.states_topic, STATE, {
            "action": action["action"], "transaction": action["transaction"], "key": action["key"],
            "version": action["version"], "schedule_id": action.get("schedule_id"),
            "request_id": action["request_id"], "accepted": bool(reply.get("ok")),
            "state": STATE_OF.get(order.get("status", ""), "Unknown") if found else "Unknown",
            "detail": str(reply.get("detail") or ""), "order_id": order.get("orderId"),
            "quantity": order.get("quantity"), "end_time": order.get("deadline"),
            "segments": action.get("segments") or []}, key=action["key"])

    async def on_completed(self, envelope: Envelope) -> None:
        order_id = envelope.payload.get("orderId")
        key = self.by_order.get(order_id) if isinstance(order_id, str) else None
        tracked = self.requests.get(key) if key else None
        if tracked is None or tracked.exported:
            return  # not an ERP order, or exported already (a repeated completion)
        if tracked.completed_at is None:
            tracked.completed_at = self.ctx.clock.time()
            self.state.save(tracked)
        await self.ask(f"get:{order_id}", {"action": "get", "orderId": order_id})  # completed for the PMS too?

    async def _export(self, tracked: Tracked, order: dict[str, Any]) -> None:
        request = tracked.request
        quantity = tracked.quantity if tracked.quantity is not None and \
            math.ceil(tracked.quantity) == order["quantity"] else order["quantity"]  # changed: the new quantity
        segment = (request.get("segment_requirements") or [{}])[0]
        self.counts["exported"] += 1
        await self.ctx.publish(self.params.completion_topic, B2MML_COMPLETED, {
            "order_id": order["orderId"], "request_id": request["request_id"],
            "schedule_id": request.get("schedule_id"), "actual_start": order.get("createdAt"),
            "actual_end": order.get("completedAt"), "response_state": "Completed",
            "segment_response_id": f"{order['orderId']}-S1", "process_segment_id": segment.get("process_segment_id"),
            "material_definition_id": tracked.material, "quantity_produced": quantity,
            "unit": tracked.unit or "EA", "consumed": []}, key=order["orderId"])
        tracked.exported, tracked.status = True, "completed"  # after the publish: a kill before it exports again,
        self.state.save(tracked)  # and the exporter's ledger (one export per order id, in SQL) refuses the second

    # -- report and checks -------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        statuses = Counter(t.status for t in self.requests.values())
        return {"requests": len(self.requests), "outstanding": len(self.outstanding),
                **{f"status_{k}": v for k, v in sorted(statuses.items())}, **dict(sorted(self.counts.items()))}

    def checks(self) -> list[Check]:
        ledger = Ledger(self.ctx.storage)
        now = self.ctx.clock.time()
        grace = self.params.export_grace
        imported = ledger.imported_requests()
        # a request imported within the grace may still be on its way here (imported as the run ends, or
        # while this link restarts after a kill): as late as a "requested" one, not lost
        settled = set(ledger.imported_requests(before=now - grace))
        unaccounted = [k for k in imported if (k not in self.requests and k in settled) or (
            k in self.requests and self.requests[k].status == "requested"
            and now - self.requests[k].requested_at > grace)]
        statuses = Counter(self.requests[k].status for k in imported if k in self.requests)
        exported = ledger.exported_orders()
        ours = {t.order_id: t for t in self.requests.values() if t.order_id}
        completed = {oid for oid, t in ours.items() if t.completed_at is not None}
        overdue = sorted(oid for oid in completed - set(exported) if now - (ours[oid].completed_at or now) > grace)
        foreign = sorted(set(exported) - set(ours))
        return [
            Check("every imported ERP request accounted for", not unaccounted,
                  f"{len(imported)} imported: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
                  if not unaccounted else f"{len(unaccounted)} without an order: {unaccounted[:5]}"),
            Check("every completed ERP order exported exactly once", not overdue and not foreign
                  and len(exported) == len(set(exported)),
                  f"{len(exported)} exported, {len(completed - set(exported))} completing"
                  if not overdue and not foreign else f"not exported: {overdue[:5]}; not ours: {foreign[:5]}"),
            self._outbox_check(exported),
        ]

    def _outbox_check(self, exported: list[str]) -> Check:
        name = "every export in the outbox validates, one per order"
        if self.params.outbox is None:
            return Check(name, True, "no outbox configured")
        runtime = self.ctx.services.get("runtime")
        base = getattr(getattr(runtime, "manifest", None), "plant_dir", None)
        folder = (base / self.params.outbox) if base is not None else None
        files = sorted(folder.glob("PERF-*.xml")) if folder is not None and folder.is_dir() else []
        bad: list[str] = []
        for path in files:
            try:
                doc = load(path.read_bytes(), max_bytes=10 * 1024 * 1024, source=str(path))
            except B2mmlError as exc:
                bad.append(f"{path.name}: {exc.summary}")
                continue
            if doc.noun not in ("ProductionPerformance", "OperationsPerformance"):
                bad.append(f"{path.name}: {doc.verb or ''}{doc.noun}")
        names = {p.stem.removeprefix("PERF-") for p in files}
        if names != set(exported):
            bad.append(f"files {len(names)} != exports {len(exported)}: missing {sorted(set(exported) - names)[:3]}, "
                       f"extra {sorted(names - set(exported))[:3]}")
        return Check(name, not bad, "; ".join(bad[:5]) or f"{len(files)} documents, each valid against the XSD")
