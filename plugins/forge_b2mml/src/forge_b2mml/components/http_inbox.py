"""``b2mml.http_inbox``: ``POST <path>/<kind>`` with ``Content-Type: application/xml``.

Kinds: ``schedule``, ``routing``, ``material``, ``acknowledgement`` (the ERP's answer to one of
our exports). ``202 Accepted`` with ``{"ack_id", "accepted": true, ...}`` (and the
``X-B2MML-Ack-Id`` header; ``Accept: application/xml`` returns the Acknowledge<Noun> document
instead), ``400`` with every error, ``404`` for an unknown kind, ``413`` over ``max_bytes``,
``415`` for another content type.

Starlette on uvicorn, served inside the component on the plant's own event loop: handlers call
the bus directly, no thread hand-off. uvicorn's signal capture is switched off so Ctrl-C stays
the runtime's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import uvicorn
from forge_core import Component
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_b2mml.inbound import KINDS, Inbound
from forge_b2mml.settings import HttpInboxParams
from forge_b2mml.transactions import Ledger

XML_TYPES = ("application/xml", "text/xml")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the runtime owns SIGINT/SIGTERM
        yield


class HttpInbox(Component):
    """Import B2MML documents over HTTP: POST /b2mml/<kind>, 202 with the acknowledgement id or 400."""

    Params: ClassVar[type[HttpInboxParams]] = HttpInboxParams
    params: HttpInboxParams

    async def start(self) -> None:
        self.inbound = Inbound(self.ctx, self.params, Ledger(self.ctx.storage))
        await self.inbound.flush()
        self.lock = asyncio.Lock()  # one document at a time: the ledger's transactions stay short and ordered
        prefix = self.params.path.rstrip("/")
        app = Starlette(routes=[Route(prefix + "/{kind}", self.post, methods=["POST"])])
        config = uvicorn.Config(app, host=self.params.host, port=self.params.port, log_level="warning",
                                lifespan="off", access_log=False)
        self.server = _Server(config)
        self.task = self.ctx.spawn(self.server.serve(), name="http")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises the bind error, naming the port
                raise RuntimeError(f"{self.name}: HTTP server on {self.params.host}:{self.params.port} stopped")
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.ctx.log.info("B2MML inbox on http://%s:%d%s/{%s}", self.params.host, self.port, prefix,
                          "|".join(KINDS))

    async def stop(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.task), 5.0)

    async def post(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return JSONResponse({"error": f"unknown document kind {kind!r}; one of {sorted(KINDS)}"}, 404)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in XML_TYPES:
            return JSONResponse({"error": f"Content-Type must be application/xml, got {content_type or 'none'!r}"},
                                415)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > self.params.max_bytes:
                return JSONResponse({"error": f"document larger than max_bytes={self.params.max_bytes}"}, 413)
        async with self.lock:
            receipt = self.inbound.receive(bytes(body), source=f"http:{kind}", kind=kind)
            if receipt.accepted:
                await self.inbound.flush()
            await self.inbound.publish_receipt(receipt)
        headers = {"X-B2MML-Ack-Id": receipt.ack_id}
        if not receipt.accepted:
            return JSONResponse({"ack_id": receipt.ack_id, "accepted": False, "summary": receipt.summary,
                                 "errors": [p.as_dict() for p in receipt.errors]}, 400, headers=headers)
        if "application/xml" in request.headers.get("accept", "") and receipt.ack_xml is not None:
            return Response(receipt.ack_xml, 202, headers=headers, media_type="application/xml")
        return JSONResponse({"ack_id": receipt.ack_id, "accepted": True, "summary": receipt.summary,
                             "messages": receipt.messages, "duplicates": receipt.duplicates}, 202, headers=headers)

    def health(self) -> dict[str, Any]:
        return {"port": getattr(self, "port", None), **getattr(getattr(self, "inbound", None), "stats", {})}

    def report(self) -> dict[str, Any]:
        return dict(self.inbound.stats)
