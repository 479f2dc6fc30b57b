"""``b2mml.http_inbox``: ``POST <path>/<kind>`` with ``Content-Type: application/xml``.

Kinds: ``schedule``, ``routing``, ``material``, ``acknowledgement`` (the ERP's answer to one of
our exports). ``202 Accepted`` with ``{"ack_id", "accepted": true, ...}`` (and the
``X-B2MML-Ack-Id`` header; ``Accept: application/xml`` returns the Acknowledge<Noun> document
instead), ``400`` with every error, ``404`` for an unknown kind, ``413`` over ``max_bytes``,
``415`` for another content type.

A Starlette app mounted on the runtime's one HTTP server (``ctx.http``, ``runtime.http`` in the
manifest), so a plant with REST and a B2MML inbox opens one port; handlers run on the plant's
event loop and call the bus directly. Under virtual time nothing listens and the same handlers
answer in-process through ``ctx.http.app``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from forge_core import Component
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_b2mml.inbound import INBOX_PUBLISHES, KINDS, Inbound
from forge_b2mml.settings import HttpInboxParams
from forge_b2mml.transactions import Ledger

XML_TYPES = ("application/xml", "text/xml")


class HttpInbox(Component):
    """Import B2MML documents over HTTP: POST /b2mml/<kind>, 202 with the acknowledgement id or 400."""

    Params: ClassVar[type[HttpInboxParams]] = HttpInboxParams
    params: HttpInboxParams
    publishes = INBOX_PUBLISHES

    async def start(self) -> None:
        self.inbound = Inbound(self.ctx, self.params, Ledger(self.ctx.storage))
        await self.inbound.flush()
        self.lock = asyncio.Lock()  # one document at a time: the ledger's transactions stay short and ordered
        prefix = self.params.path.rstrip("/")
        app = Starlette(routes=[Route("/{kind}", self.post, methods=["POST"])])
        await self.ctx.http.mount(prefix, app)  # removed by the runtime when this component stops
        self.ctx.log.info("B2MML inbox on %s%s/{%s}", self.ctx.http.url or "(in-process)", prefix, "|".join(KINDS))

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
        return {"url": self.ctx.http.url, "path": self.params.path, **getattr(getattr(self, "inbound", None), "stats", {})}

    def report(self) -> dict[str, Any]:
        return dict(self.inbound.stats)
