"""``/health`` and ``/ready`` over HTTP, for process supervisors and load balancers.

Served by the standard library's threading HTTP server on a daemon thread: the probes keep
answering even when the event loop is busy, which is when a probe matters most. The handler
only reads a snapshot function; it never touches the loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("forge.health")

Snapshot = Callable[[], tuple[bool, bool, dict[str, Any]]]  # (healthy, ready, detail)


class HealthServer:
    def __init__(self, snapshot: Snapshot, host: str = "127.0.0.1", port: int = 0) -> None:
        self._snapshot = snapshot
        handler = self._handler_class()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="forge-health", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        snapshot = self._snapshot

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in ("/health", "/ready"):
                    self._send(404, {"error": f"no such path {path!r}; try /health or /ready"})
                    return
                try:
                    healthy, ready, detail = snapshot()
                except Exception as exc:  # a probe must answer, even about itself
                    self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return
                ok = healthy if path == "/health" else ready
                self._send(200 if ok else 503, {"status": "ok" if ok else "unavailable", **detail})

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health probe: " + format, *args)

        return Handler
