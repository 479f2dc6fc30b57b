"""The REST face of the order scheduler: a Starlette app the component mounts on ``ctx.http``.

| route | answer |
|---|---|
| ``POST /orders`` | 201 the order (assigned or pending); 422 naming the field at fault; an ``Idempotency-Key`` seen before returns the first answer again (``Idempotency-Replayed: true``) |
| ``GET /orders`` | 200 ``{orders, count}``, filters ``status``, ``factory``, ``limit``, ``offset`` |
| ``GET /orders/{id}`` | 200 the order with its assignment history; 404 |
| ``GET /factories`` | 200 ``{factories}``: status, risk, capacity, load, free |
| ``GET /factories/{id}`` | 200 one factory (``get_factory_capacity``); 404 |
| ``GET /openapi.json`` | the OpenAPI 3.1 document (:mod:`forge_sched.orders.openapi`) |

Handlers run on the plant's event loop and call the service directly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from forge_core.tactics import NotLeader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_sched.orders import openapi, queries
from forge_sched.orders.requests import BadRequest, ListQuery, OrderRequest, check_idempotency_key, validate
from forge_sched.orders.service import IdempotencyMismatch, NewOrder, OrderService
from forge_sched.orders.tables import ORDER_STATUSES
from forge_sched.orders.transactions import Conflict

__all__ = ["OrdersApi"]


class OrdersApi:
    """The routes over ``service``. ``leading()`` says whether this replica places orders itself (a
    shadow stores them pending and the leader places them); ``after_write`` runs after each commit
    (the component relays the outbox there) and before the answer: a 201 means the order's messages
    were handed to the bus. Requests that commit while one ``after_write`` runs share the next one
    (:meth:`_after_commit`) instead of queueing one each."""

    def __init__(self, service: OrderService, *, leading: Callable[[], bool],
                 after_write: Callable[[], Awaitable[Any]], max_body_bytes: int, page_limit: int) -> None:
        self.service = service
        self.engine = service.tx.engine
        self.leading = leading
        self.after_write = after_write
        self.max_body_bytes = max_body_bytes
        self.page_limit = page_limit
        self.requests = {"post": 0, "rejected": 0, "replayed": 0}
        #: after_write runs: started (each covers every commit before it) and shared by a later commit
        self.after_writes = {"runs": 0, "shared": 0}
        self._running: asyncio.Future[None] | None = None  # the after_write under way (done when it ends)
        self._next: asyncio.Future[None] | None = None  # the one to run after it, not started yet
        self.app = Starlette(routes=[
            Route("/orders", self.post_order, methods=["POST"]),
            Route("/orders", self.list_orders, methods=["GET"]),
            Route("/orders/{order_id}", self.get_order, methods=["GET"]),
            Route("/factories", self.list_factories, methods=["GET"]),
            Route("/factories/{factory_id}", self.get_factory, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ], exception_handlers={BadRequest: self._bad_request, Conflict: self._busy, NotLeader: self._busy,
                               sa.exc.OperationalError: self._busy})

    # -- errors ------------------------------------------------------------------------------------
    async def _bad_request(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequest)
        self.requests["rejected"] += 1
        return JSONResponse(exc.body(), exc.status)

    async def _busy(self, request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"the order database is busy or unreachable, retry: {type(exc).__name__}"},
                            503, headers={"Retry-After": "1"})

    # -- routes ------------------------------------------------------------------------------------
    async def post_order(self, request: Request) -> Response:
        self.requests["post"] += 1
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise BadRequest(415, f"Content-Type must be application/json, got {media or 'none'!r}", "Content-Type")
        key = check_idempotency_key(request.headers.get("idempotency-key"))
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > self.max_body_bytes:
                raise BadRequest(413, f"body larger than max_body_bytes={self.max_body_bytes}", "body")
        try:
            data = json.loads(body, object_pairs_hook=_unique_keys)
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError and a repeated key are ValueErrors
            raise BadRequest(400, f"body is not JSON: {exc}", "body") from None
        except RecursionError:
            raise BadRequest(400, "body is not JSON: nested too deeply", "body") from None
        order: OrderRequest = validate(OrderRequest, data, "order")
        try:
            view, created = await self.service.create_order(
                NewOrder(order.product_type, order.quantity, order.deadline), idempotency_key=key,
                assign=self.leading())
        except IdempotencyMismatch as exc:
            raise BadRequest(422, str(exc), "Idempotency-Key") from None
        if created:
            await self._after_commit()
        else:
            self.requests["replayed"] += 1
        headers = {"Location": f"{request.url.path.rstrip('/')}/{view['id']}"}
        if not created:
            headers["Idempotency-Replayed"] = "true"
        return JSONResponse(view, 201, headers=headers)

    async def _after_commit(self) -> None:
        """``after_write`` for a commit just made: run now if none is under way (in this request, as if
        called directly); else share the next run, which starts when the current one ends and so after
        this commit. Under load one relay then publishes the messages of every order committed while
        the previous one ran (one read and one delete for all of them), not one relay per order."""
        if self._running is None:
            await self._run_after_write()
            return
        if self._next is None:
            self._next = asyncio.ensure_future(self._after_current(self._running))
        self.after_writes["shared"] += 1
        await asyncio.shield(self._next)

    async def _after_current(self, current: asyncio.Future[None]) -> None:
        await current  # never fails: its outcome went to the request that ran it
        self._next = None  # commits from here on need a run that starts after them
        await self._run_after_write()

    async def _run_after_write(self) -> None:
        done = self._running = asyncio.get_running_loop().create_future()
        self.after_writes["runs"] += 1
        try:
            await self.after_write()
        finally:
            if self._running is done:
                self._running = None
            done.set_result(None)

    async def list_orders(self, request: Request) -> Response:
        query: ListQuery = validate(ListQuery, dict(request.query_params), "query")
        if query.status is not None and query.status not in ORDER_STATUSES:
            raise BadRequest(422, f"invalid query: status must be one of {', '.join(ORDER_STATUSES)}, "
                                  f"got {query.status!r}", "status")
        limit = min(100, self.page_limit) if query.limit is None else query.limit
        if limit > self.page_limit:
            raise BadRequest(422, f"invalid query: limit must be at most {self.page_limit}", "limit")
        found = queries.list_orders(self.engine, status=query.status, factory_id=query.factory, limit=limit,
                                    offset=query.offset)
        return JSONResponse({"orders": found, "count": len(found)})

    async def get_order(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        view = queries.get_order(self.engine, order_id) if len(order_id) <= 64 else None
        if view is None:
            return JSONResponse({"error": f"order {order_id[:64]!r} not found", "order_id": order_id[:64]}, 404)
        return JSONResponse(view)

    async def list_factories(self, request: Request) -> Response:
        if request.query_params:
            name = next(iter(request.query_params))
            raise BadRequest(422, f"invalid query: {name}: unknown parameter", name)
        return JSONResponse({"factories": queries.factory_views(self.engine)})

    async def get_factory(self, request: Request) -> Response:
        factory_id = request.path_params["factory_id"]
        view = self.service.get_factory_capacity(factory_id) if len(factory_id) <= 100 else None
        if view is None:
            return JSONResponse({"error": f"factory {factory_id[:100]!r} not found",
                                 "factory_id": factory_id[:100]}, 404)
        return JSONResponse(view)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document(request.scope.get("root_path", "")))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: ``{"quantity": 1, "quantity": 9}`` means no one knows what."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} given twice in one object")
        seen.add(key)
    return dict(pairs)
