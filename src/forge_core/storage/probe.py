"""Whether the plant's database answers, for ``/ready``: a cached verdict a background thread refreshes.

Why cached and not a query per probe: the probes may be polled every second by several callers (the
kubelet, a load balancer, an operator's curl), and ``/ready`` is also answered on the plant's event
loop (``runtime.http``), where a blocking query would stall every handler for as long as the database
takes to fail. One daemon thread pings every ``interval`` seconds instead; a probe only reads the
last verdict, so it costs a lock and a dict whatever the database does, and the database sees one
``SELECT 1`` per interval however many probes arrive.

Why a connection of its own and not one from the plant's pool: a busy pool (``pool_size`` reached)
would make the probe wait for the plant's work and report a healthy database as down, and the
probe's wait would take a connection the plant needs. A ping that hangs (a server that accepts and
never answers) is judged by its age: once older than ``timeout`` the verdict is "no answer", even
though the thread is still stuck in the driver.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from forge_core.storage.engine import mask_url

__all__ = ["StorageProbe", "watch"]


class StorageProbe:
    """Pings the database at ``url`` every ``interval`` seconds once :meth:`start` ed; :meth:`status`
    is the last verdict: ``{"ok": True, "url": ...}`` or ``{"ok": False, "url": ..., "error": ...}``
    (the URL with its password masked)."""

    def __init__(self, url: URL, *, timeout: float = 1.0, interval: float = 2.0) -> None:
        if timeout <= 0 or interval <= 0:
            raise ValueError(
                f"storage probe of {mask_url(url)!r}: timeout and interval must be > 0, "
                f"got {timeout!r} and {interval!r}"
            )
        self.url = mask_url(url)
        self.timeout, self.interval = timeout, interval
        self._engine, self._query = _probe_engine(url, timeout)
        self._lock = threading.Lock()
        self._verdict: dict[str, Any] | None = None
        self._since: float | None = None  # when the ping in flight began (time.monotonic)
        self._done = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Ping now and then every ``interval`` seconds, on a daemon thread. Returns after the first
        verdict, or after ``timeout`` if the database does not answer (the verdict then says so)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="forge-storage-probe", daemon=True)
        self._thread.start()
        self._first.wait(self.timeout)

    def status(self) -> dict[str, Any]:
        """The last verdict; never touches the database."""
        with self._lock:
            verdict, since = self._verdict, self._since
        if since is not None and time.monotonic() - since > self.timeout:
            return {"ok": False, "url": self.url, "error": f"no answer within {self.timeout:g} s"}
        if verdict is None:
            return {"ok": False, "url": self.url, "error": "not checked yet"}
        return verdict

    def check(self) -> dict[str, Any]:
        """Ping once, now, on the calling thread; record and return the verdict."""
        with self._lock:
            self._since = time.monotonic()
        try:
            with self._engine.connect() as conn:
                conn.execute(self._query)
            verdict: dict[str, Any] = {"ok": True, "url": self.url}
        except Exception as exc:  # any failure to answer is the verdict, not the thread's end
            verdict = {"ok": False, "url": self.url, "error": _reason(exc)}
            self._engine.dispose()  # whatever the driver thinks of the kept connection, the next ping connects anew
        with self._lock:
            self._verdict, self._since = verdict, None
        return verdict

    def close(self) -> None:
        """Stop pinging and close the probe's connection (a ping stuck in the driver is left to its
        daemon thread: the process does not wait for it)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(self.timeout)
            if self._thread.is_alive():
                return
        self._engine.dispose()

    def _run(self) -> None:
        while True:
            self.check()
            self._first.set()
            if self._done.wait(self.interval):
                return


def watch(engine: Engine, runtime: Any) -> StorageProbe:
    """The started probe of the plant's ``engine`` with ``runtime``'s (the manifest's ``runtime:``) health
    settings: the background ping /ready reads, started by the runtime under a real clock only."""
    probe = StorageProbe(engine.url, timeout=runtime.health_storage_timeout, interval=runtime.health_storage_interval)
    probe.start()
    return probe


def _probe_engine(url: URL, timeout: float) -> tuple[Engine, sa.TextClause]:
    """An engine for the probe alone, and the statement that proves the database answers."""
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):  # nothing on disk to lose: the driver is all there is
            return sa.create_engine(url, poolclass=NullPool), sa.text("SELECT 1")
        # A fresh connection per ping, opened read-write without create (mode=rw): a kept one holds the
        # file open and answers after the file is gone, and a default open would create an empty database.
        # SELECT 1 alone reads no page of the file; the schema count reads the header and first page.
        probe_url = url.set(database=f"file:{url.database}", query={**url.query, "mode": "rw", "uri": "true"})
        return (
            sa.create_engine(probe_url, poolclass=NullPool, connect_args={"timeout": timeout}),
            sa.text("SELECT count(*) FROM sqlite_master"),
        )
    connect_args: dict[str, Any] = {}
    if url.drivername == "postgresql+psycopg" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's least; the age check bounds the rest
    # One kept connection (a ping is a round trip, not a new backend every interval); SQLAlchemy drops
    # it when the server goes away and the next ping connects anew.
    return (
        sa.create_engine(url, pool_size=1, max_overflow=0, pool_timeout=timeout, connect_args=connect_args),
        sa.text("SELECT 1"),
    )


def _reason(exc: Exception) -> str:
    """The driver's first line (``connection refused``, ``unable to open database file``), not
    SQLAlchemy's wrapper with the statement and a link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0] or type(exc).__name__
