"""A ``redis-server`` without persistence for tests (see :mod:`forge_core.testing.servers`)."""

from __future__ import annotations

import socket
from pathlib import Path

from forge_core.testing.servers import ServerError, ServerProcess, which_or_skip

__all__ = ["RedisServer"]


class RedisServer(ServerProcess):
    """``redis-server`` without persistence; ``kill()``/``restart()`` for failure tests."""

    name = "redis"

    def __init__(self, *, port: int | None = None, base_dir: Path | None = None) -> None:
        self._binary = which_or_skip("redis-server")
        super().__init__(port=port, base_dir=base_dir)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self._binary, "--port", str(self.port), "--bind", self.host, "--save", "",
            "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip

    def command(self, *args: str, timeout: float = 2.0) -> bytes:
        """Send one command over raw RESP and return the raw reply (no redis package needed)."""
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(payload)
            return s.recv(65536)

    def _is_ready(self) -> bool:
        try:
            return self.command("PING", timeout=0.3).startswith(b"+PONG")
        except OSError:
            return False

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if not reply.startswith(b"+OK"):
            raise ServerError(f"redis FLUSHALL failed: {reply!r}")
