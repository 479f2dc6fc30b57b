"""Orders over messages, for other plugins and plants (an ERP adapter, say), which may not import
this one: ``sched.order_request`` in, ``sched.order_reply`` out (topics ``orders/requests`` and
``orders/replies``; the reply's key is the request's ``requestId``).

| action | needs | does |
|---|---|---|
| ``create`` | ``productType``, ``quantity``, ``deadline``; ``idempotencyKey`` (recommended) | as ``POST /orders``: the same key again returns the first order (``created: false``), another body with it is ``invalid_argument`` |
| ``change`` | ``orderId`` or ``idempotencyKey``; ``quantity`` and/or ``deadline`` | new terms for an order not started (:mod:`forge_sched.orders.changes`) |
| ``cancel`` | ``orderId`` or ``idempotencyKey`` | cancels an order not started |
| ``get`` | ``orderId`` or ``idempotencyKey`` | the order as it is |

Reply: ``{requestId, action, ok, code, detail, field, created, order}``; ``code`` is ``ok``,
``invalid_argument`` (``field`` names the culprit), ``not_found``, ``conflict`` (started,
completed or cancelled: nothing changed), or ``not_leader`` / ``unavailable`` (retry). Only the
leading replica answers (a request meanwhile goes unanswered: the requester retries; every action
is safe to repeat).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from forge_sched.orders import changes
from forge_sched.orders.moves import iso
from forge_sched.orders.requests import IDEMPOTENCY_KEY, OrderRequest, problems
from forge_sched.orders.service import IdempotencyMismatch, NewOrder, OrderService

__all__ = ["REPLY", "REQUEST", "OrderCommand", "handle", "handle_error", "order_message"]

REQUEST = "sched.order_request"
REPLY = "sched.order_reply"


def _iso_text(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a timezone")
    return value


class OrderCommand(BaseModel):
    """The body of ``sched.order_request`` (its JSON Schema: ``schemas/sched.order_request.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requestId: str = Field(min_length=1, max_length=200)
    action: Literal["create", "change", "cancel", "get"]
    orderId: str | None = Field(None, min_length=1, max_length=64)
    idempotencyKey: str | None = Field(None, pattern=IDEMPOTENCY_KEY.pattern)
    productType: str | None = None
    quantity: int | None = Field(None, gt=0, le=1_000_000, strict=True)
    deadline: Annotated[AwareDatetime | None, BeforeValidator(_iso_text)] = None

    @model_validator(mode="after")
    def _what_each_action_needs(self) -> Self:
        if self.action != "create" and self.orderId is None and self.idempotencyKey is None:
            raise ValueError(f"{self.action} needs orderId or idempotencyKey")
        if self.action == "change" and self.quantity is None and self.deadline is None:
            raise ValueError("change needs quantity and/or deadline")
        return self


def order_message(row: Any) -> dict[str, Any]:
    """An ``orders`` row as the reply shows it (camelCase, like the other sched.order_* messages)."""
    return {"orderId": row.id, "productType": row.product_type, "quantity": row.quantity,
            "deadline": iso(row.deadline), "status": row.status, "factoryId": row.factory_id,
            "progress": row.progress, "idempotencyKey": row.idempotency_key, "createdAt": iso(row.created_at),
            "completedAt": iso(row.completed_at), "completedBy": row.completed_by}


def _reply(body: dict[str, Any], code: str, detail: str, *, field: str | None = None, row: Any = None,
           created: bool | None = None) -> dict[str, Any]:
    request_id = body.get("requestId")
    return {"requestId": request_id if isinstance(request_id, str) else "", "action": body.get("action"),
            "ok": code == "ok", "code": code, "detail": detail, "field": field, "created": created,
            "order": None if row is None else order_message(row)}


def handle_error(body: Any, code: str, detail: str) -> dict[str, Any]:
    """The reply when the request could not be acted on (``not_leader``, ``unavailable``): retry."""
    return _reply(body if isinstance(body, dict) else {}, code, detail)


def _row(service: OrderService, order_id: str | None = None, key: str | None = None) -> Any:
    with service.tx.engine.connect() as conn:
        return changes.find_order(conn, order_id=order_id, key=key)


async def handle(service: OrderService, body: Any, *, assign: bool) -> dict[str, Any]:
    """Act on one request body; the reply (never raises for bad input; NotLeader and database errors
    propagate for the component to answer ``not_leader`` / ``unavailable``)."""
    if not isinstance(body, dict):
        return _reply({}, "invalid_argument", "the request must be a JSON object", field="body")
    try:
        cmd = OrderCommand.model_validate(body)
        if cmd.action == "create":
            new = OrderRequest.model_validate({"product_type": cmd.productType, "quantity": cmd.quantity,
                                               "deadline": body.get("deadline")})
    except ValidationError as exc:
        first = problems(exc)[0]
        field = {"product_type": "productType"}.get(first["field"], first["field"])
        return _reply(body, "invalid_argument", f"invalid {body.get('action')!s} request: {field}: {first['message']}",
                      field=field)
    if cmd.action == "create":
        try:
            view, created = await service.create_order(NewOrder(new.product_type, new.quantity, new.deadline),
                                                       idempotency_key=cmd.idempotencyKey, assign=assign)
        except IdempotencyMismatch as exc:
            return _reply(body, "invalid_argument", str(exc), field="idempotencyKey")
        return _reply(body, "ok", "created" if created else "created before (same idempotency key)",
                      row=_row(service, view["id"]), created=created)
    if cmd.action == "get":
        row = _row(service, cmd.orderId, cmd.idempotencyKey)
        if row is None:
            return _reply(body, "not_found", f"no order {cmd.orderId or cmd.idempotencyKey!r}")
        return _reply(body, "ok", f"order {row.id} is {row.status}", row=row)
    if cmd.action == "change":
        deadline: datetime | None = cmd.deadline
        outcome = await changes.change_order(service, order_id=cmd.orderId, key=cmd.idempotencyKey,
                                             quantity=cmd.quantity, deadline=deadline)
    else:
        outcome = await changes.cancel_order(service, order_id=cmd.orderId, key=cmd.idempotencyKey)
    return _reply(body, outcome.code, outcome.detail, row=outcome.row)
