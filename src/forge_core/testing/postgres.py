"""A throwaway PostgreSQL cluster for tests (see :mod:`forge_core.testing.servers`)."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from forge_core.testing.servers import ServerError, ServerProcess, ServerUnavailable, port_open, which_or_skip

__all__ = ["PostgresServer"]


class PostgresServer(ServerProcess):
    """A throwaway PostgreSQL cluster: trust auth on 127.0.0.1, fsync off, sockets in the temp dir.

    initdb refuses to run as root, so under root the cluster belongs to the Debian ``postgres``
    user (``run_as``) and both initdb and postgres run as that user.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, no checkpoint wait
    start_timeout = 60.0

    def __init__(
        self, *, port: int | None = None, base_dir: Path | None = None, run_as: str = "postgres"
    ) -> None:
        self._initdb = which_or_skip("initdb")
        self._postgres = which_or_skip("postgres")
        super().__init__(port=port, base_dir=base_dir)
        self.data_dir = self.dir / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(run_as)
            except KeyError:
                raise ServerError(
                    f"running as root and there is no {run_as!r} user to own the PostgreSQL cluster "
                    "(initdb refuses root): install the Debian package 'postgresql-15' or run as non-root"
                ) from None
            self.user = run_as
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.dir, 0o700)
            # The log file is opened by us, but make it readable/owned consistently anyway.
            self.log_path.touch()
            os.chown(self.log_path, pw.pw_uid, pw.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """libpq DSN, for psycopg directly."""
        return f"host={self.host} port={self.port} user=postgres dbname={database}"

    def _popen_kwargs(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        cmd = [
            self._initdb, "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            result = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, check=False, **self._popen_kwargs()
            )
        if result.returncode != 0:
            raise ServerError(f"initdb failed with code {result.returncode}; log:\n{self.log_tail()}")

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "32MB",
        }
        cmd = [self._postgres, "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _is_ready(self) -> bool:
        # The port opens before recovery finishes; the log line means queries will work.
        if not port_open(self.host, self.port):
            return False
        return "ready to accept connections" in self.log_tail(200)

    def _spawn_and_wait(self) -> None:
        # Earlier runs' "ready" lines must not count for this start.
        with contextlib.suppress(OSError):
            self.log_path.write_bytes(b"")
        super()._spawn_and_wait()

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping a leftover one) and return its SQLAlchemy URL."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
            raise ValueError(f"invalid database name {name!r}: letters, digits, underscore; max 63")
        self.execute_autocommit(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.execute_autocommit(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.execute_autocommit(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def execute_autocommit(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        try:
            import psycopg
        except ImportError:
            raise ServerUnavailable(
                'psycopg is needed to talk to PostgreSQL: pip install "forge-core[postgres]"'
            ) from None
        with psycopg.connect(self.dsn(database), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)
