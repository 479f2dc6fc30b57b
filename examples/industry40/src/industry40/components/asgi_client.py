"""The simulated clients' in-process HTTP: one ASGI call into the plant's HTTP app per request.

Under virtual time (and in the embedded profile without ``url``) the clients reach ``POST /orders``
through the same app a socket would: ``ctx.http.app``'s routing, the PMS's Starlette routes, its
validation and 422s, its Idempotency-Key handling and 503s. httpx's ``ASGITransport`` does the same
through httpx's whole request model (URL parsing, header normalisation, auth and redirect hooks,
stream wrappers): measured with py-spy, that layer cost more CPU than Starlette's own per request.
This client builds the ASGI scope and body itself and collects the response; nothing between the
client and the app is skipped but httpx's client-side bookkeeping.

Errors surface as with httpx's transport: an exception in the app propagates (Starlette answers
500 first), an app that never starts a response raises :class:`NoResponse` (an ``httpx.HTTPError``,
so the caller's "no answer" path handles it as it handles a refused socket).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import TracebackType
from typing import Any

import httpx

__all__ = ["InProcessClient", "InProcessResponse", "NoResponse"]

Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]


class NoResponse(httpx.TransportError):
    """The app returned without sending ``http.response.start``."""


class InProcessResponse:
    """What the clients read of a response: the status, the headers and the body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status_code
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class InProcessClient:
    """``await client.post(path, json=..., headers=...)`` against ``app`` without a socket."""

    def __init__(self, app: ASGIApp, *, host: str = "plant") -> None:
        self.app = app
        self.host = host.encode("latin-1")

    async def __aenter__(self) -> InProcessClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def post(self, path: str, *, json: Any, headers: Mapping[str, str] | None = None) -> InProcessResponse:
        body = _dumps(json)
        return await self.request("POST", path, body, {"content-type": "application/json", **(headers or {})})

    async def request(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> InProcessResponse:
        target, _, query = path.partition("?")
        raw = [(b"host", self.host), (b"content-length", str(len(body)).encode("ascii"))]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": target, "raw_path": target.encode("utf-8"), "query_string": query.encode("latin-1"),
            "root_path": "", "headers": raw, "client": ("127.0.0.1", 123), "server": (self.host.decode(), 80),
            "extensions": {}}
        sent_body = False
        status: int | None = None
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}  # asked again: the response is done, the client gone

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_headers.extend(message.get("headers", ()))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, send)
        if status is None:
            raise NoResponse(f"{method} {path}: the app sent no response")
        return InProcessResponse(status, response_headers, b"".join(chunks))


#: ``json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)``'s encoder, made once
#: (``dumps`` with an option builds one per call)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _dumps(value: Any) -> bytes:
    """The body as httpx's ``json=`` writes it (compact, UTF-8, no NaN)."""
    return _ENCODE(value).encode("utf-8")
