"""The process's HTTP server: components mount ASGI apps under a path prefix; one uvicorn server
on the plant's event loop serves them all, plus ``/health`` and ``/ready``.

Why one server and not one per component: one port per process to open, probe and document;
and handlers run on the plant's loop, so they call the bus and the component directly, with no
thread hand-off. The server starts on the first mount, so a plant without HTTP opens no port.
Starlette and uvicorn are imported only then (``pip install forge-core[http]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

log = logging.getLogger("forge.http")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: (healthy, ready, detail), as for the threaded probe server
Snapshot = Callable[[], tuple[bool, bool, dict[str, Any]]]


class HttpHost:
    """Prefix-routed ASGI apps behind one server. ``listen=False`` (virtual time): no socket;
    ``app`` is still the whole routed application, for in-process clients."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, listen: bool = True,
                 probes: Snapshot | None = None) -> None:
        self.host, self.port, self.listen = host, port, listen
        self._probes = probes
        #: the runtime's own paths (``/metrics``): served whenever the server runs, never mounted over
        self._builtin: dict[str, ASGIApp] = {}
        self._mounts: dict[str, tuple[ASGIApp, str]] = {}  # prefix ("" = root) -> (app, owner)
        #: prefixes whose owner stopped or crashed and may mount again (a restart, a standby taking
        #: over): answered 503 with Retry-After, not 404, so a client retries instead of giving up
        self._vacant: dict[str, str] = {}
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- what components do ------------------------------------------------------------
    async def mount(self, prefix: str, app: ASGIApp, *, owner: str) -> None:
        """Serve ``app`` for every path under ``prefix`` (``"/"`` for the root), starting the
        server on first use. A prefix mounted by another component is refused, naming it."""
        key = _normalise(prefix)
        if key in ("/health", "/ready", *self._builtin):
            raise ValueError(f"{owner}: {prefix!r} is the runtime's probe path (or /metrics); mount elsewhere")
        taken = self._mounts.get(key)
        if taken is not None and taken[1] != owner:
            raise ValueError(f"{owner}: HTTP path {prefix!r} is already mounted by {taken[1]!r}")
        self._mounts[key] = (app, owner)
        self._vacant.pop(key, None)
        if self.listen:
            await self._ensure_started()

    def serve_builtin(self, path: str, app: ASGIApp) -> None:
        """Serve ``app`` at exactly ``path`` for the runtime itself (``/metrics``). Unlike :meth:`mount`
        it does not start the server: the path is there whenever a component's mount (or :meth:`start`) does."""
        self._builtin[_normalise(path)] = app

    async def start(self) -> None:
        """Listen now, without a component's mount (``runtime.metrics.listen``); no-op under virtual time."""
        if self.listen:
            await self._ensure_started()

    def release(self, owner: str) -> None:
        """Unmount every app of ``owner`` (a stopped or crashed component; a restart mounts again)."""
        for key in [k for k, (_, who) in self._mounts.items() if who == owner]:
            del self._mounts[key]
            self._vacant[key] = owner

    @property
    def url(self) -> str | None:
        """``http://host:port`` once listening; None under virtual time or before the first mount."""
        if self._server is None or not self._server.started:
            return None
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    def mounted_by(self, prefix: str) -> str | None:
        """The component serving exactly ``prefix`` (``"/orders"`` and ``"/orders/"`` are one), or None:
        a query, so a standby can wait for a prefix to come free instead of retrying :meth:`mount`."""
        taken = self._mounts.get(_normalise(prefix))
        return None if taken is None else taken[1]

    def mounts(self) -> dict[str, str]:
        """Prefix -> owning component, for the start-up banner and ``/ready``."""
        return {key or "/": owner for key, (_, owner) in sorted(self._mounts.items())}

    # -- ASGI ----------------------------------------------------------------------------
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the mounted apps have no lifespan of their own here
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        path: str = scope.get("path", "/")
        if scope["type"] == "http" and path in ("/health", "/ready") and self._probes is not None:
            await self._probe(path, send)
            return
        builtin = self._builtin.get(path.rstrip("/") or "/")
        if builtin is not None:
            await builtin(scope, receive, send)
            return
        for key in sorted(self._mounts, key=len, reverse=True):  # longest prefix wins
            if key == "" or path == key or path.startswith(key + "/"):
                app, _ = self._mounts[key]
                if key:  # Starlette's convention for a mounted app: root_path + the rest
                    scope = {**scope, "root_path": scope.get("root_path", "") + key}
                await app(scope, receive, send)
                return
        for key in sorted(self._vacant, key=len, reverse=True):
            if key == "" or path == key or path.startswith(key + "/"):
                await _json(send, 503, {"error": f"{path!r} is served by {self._vacant[key]!r}, which is restarting "
                                                 "or handing over; retry"}, retry_after=1)
                return
        await _json(send, 404, {"error": f"no such path {path!r}", "mounted": self.mounts()})

    async def _probe(self, path: str, send: Send) -> None:
        assert self._probes is not None
        try:
            healthy, ready, detail = self._probes()
        except Exception as exc:  # a probe must answer, even about itself
            await _json(send, 500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        ok = healthy if path == "/health" else ready
        await _json(send, 200 if ok else 503, {"status": "ok" if ok else "unavailable", **detail})

    # -- the server -----------------------------------------------------------------------
    async def _ensure_started(self) -> None:
        async with self._lock:
            if self._server is not None:
                return
            try:
                import uvicorn
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise RuntimeError("a component mounted an HTTP app but uvicorn is not installed: "
                                   "pip install 'forge-core[http]'") from exc

            class Server(uvicorn.Server):
                @contextlib.contextmanager
                def capture_signals(self) -> Iterator[None]:  # the runtime owns SIGINT/SIGTERM
                    yield

            config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                    lifespan="off", access_log=False, interface="asgi3")
            server = Server(config)
            task = asyncio.create_task(self._serve(server), name="forge-http")
            while not server.started:
                if task.done():
                    task.result()  # raises the bind error
                    raise RuntimeError(f"HTTP server on {self.host}:{self.port} stopped while starting "
                                       "(is the port taken?)")
                await asyncio.sleep(0.01)
            self._server, self._task = server, task
            log.info("serving HTTP on %s (%s)", self.url, ", ".join(f"{p} -> {o}" for p, o in self.mounts().items()))

    async def _serve(self, server: Any) -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits the process when it cannot bind; a taken port is the mount's error
            raise RuntimeError(f"HTTP server could not bind {self.host}:{self.port} (is the port taken? "
                               "runtime.http.port / runtime.http.ports)") from None

    async def aclose(self, timeout: float = 5.0) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        if not self._task.done():
            self._task.cancel()
        self._server = self._task = None


class HttpMounts:
    """``ctx.http``: the process's HTTP host as seen by one component (its mounts are its own)."""

    def __init__(self, host: HttpHost, owner: str) -> None:
        self._host, self._owner = host, owner

    async def mount(self, prefix: str, app: ASGIApp) -> None:
        await self._host.mount(prefix, app, owner=self._owner)

    def is_mounted(self, prefix: str) -> bool:
        """Whether a component (this one or another) serves exactly ``prefix`` now: a standby asks
        this each pass and mounts once it is False, without a refused :meth:`mount` per pass."""
        return self._host.mounted_by(prefix) is not None

    def mounted_by(self, prefix: str) -> str | None:
        """The component serving exactly ``prefix``, or None (see :meth:`HttpHost.mounted_by`)."""
        return self._host.mounted_by(prefix)

    @property
    def url(self) -> str | None:
        return self._host.url

    @property
    def app(self) -> ASGIApp:
        """The whole routed application (every component's mounts), for in-process clients."""
        return self._host.app


def _normalise(prefix: str) -> str:
    if not prefix.startswith("/"):
        raise ValueError(f"an HTTP mount path must start with '/', got {prefix!r}")
    return prefix.rstrip("/")


async def _json(send: Send, status: int, body: dict[str, Any], *, retry_after: int | None = None) -> None:
    data = json.dumps(body, default=str).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
