"""Store-and-forward outbox: messages wait in a durable SQLite file while the broker is away.

The seed's edge publishers buffered in memory and lost everything on a restart. Here ``put``
returns only after the message is committed (WAL, ``synchronous=FULL``), so a process killed
at any instant loses nothing it acknowledged (under a virtual clock, where no power cut can fall
between two instants of plant time, commits skip the fsync, as the plant's own database does);
``replay`` sends in ``seq`` order and deletes each message only after ``send`` returned,
stopping at the first failure. Delivery is therefore at least once: a crash between ``send``
and the delete sends that message again, and receivers deduplicate (see :mod:`forge_core.tactics.dedup`).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_core.clock import Clock, RealClock
from forge_core.errors import ForgeError

__all__ = ["Outbox", "OutboxFull", "OutboxMessage"]


class OutboxFull(ForgeError):
    """The outbox is at its size limit; the message was not stored."""


@dataclass(frozen=True)
class OutboxMessage:
    seq: int
    topic: str
    body: bytes
    headers: dict[str, Any]
    queued_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    size INTEGER NOT NULL,
    queued_at REAL NOT NULL
)
"""

Send = Callable[[str, bytes, dict[str, Any]], Awaitable[Any]]


class Outbox:
    """A durable FIFO of ``(topic, body, headers)`` bounded by ``max_bytes`` of payload.

    ``bytes`` counts topic + body + JSON headers of the queued messages (not SQLite's page
    overhead). ``seq`` values never repeat, even after the queue drains (AUTOINCREMENT).
    """

    def __init__(
        self,
        path: Path | str,
        max_bytes: int = 500 * 1024 * 1024,
        high_watermark: float = 0.9,
        *,
        clock: Clock | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"Outbox {path}: max_bytes must be > 0, got {max_bytes!r}")
        if not 0 < high_watermark <= 1:
            raise ValueError(f"Outbox {path}: high_watermark is a fraction in (0, 1], got {high_watermark!r}")
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.high_watermark = float(high_watermark)
        self.clock = clock or RealClock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A simulated day stores thousands of updates: an fsync each (~5 ms of wall time) would
        # dominate it, and what a virtual-time run writes is not at risk of a power cut.
        durable = not getattr(self.clock, "is_virtual", False)
        self._db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        self._db.execute(_SCHEMA)
        depth, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        self._depth = int(depth)
        self._bytes = int(size)
        self.queued = 0
        self.replayed = 0

    # -- state -----------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def above_high_watermark(self) -> bool:
        """True once the queued bytes pass ``high_watermark * max_bytes``: time to shed or alarm."""
        return self._bytes >= self.high_watermark * self.max_bytes

    # -- operations --------------------------------------------------------------------------
    def put(self, topic: str, body: builtins.bytes, headers: dict[str, Any] | None = None) -> int:
        """Store one message durably and return its sequence number."""
        head = json.dumps(headers or {}, sort_keys=True, separators=(",", ":"))
        size = len(topic.encode()) + len(body) + len(head.encode())
        if self._bytes + size > self.max_bytes:
            raise OutboxFull(
                f"outbox {self.path}: cannot queue {size} bytes for {topic!r}: {self._bytes} of "
                f"{self.max_bytes} bytes used by {self._depth} messages"
            )
        cur = self._db.execute(
            "INSERT INTO outbox (topic, body, headers, size, queued_at) VALUES (?, ?, ?, ?, ?)",
            (topic, sqlite3.Binary(body), head, size, self.clock.time()),
        )
        self._depth += 1
        self._bytes += size
        self.queued += 1
        return int(cur.lastrowid or 0)

    def peek(self, n: int = 100) -> list[OutboxMessage]:
        """The oldest ``n`` messages, in order, without removing them."""
        rows = self._db.execute(
            "SELECT seq, topic, body, headers, queued_at FROM outbox ORDER BY seq LIMIT ?", (n,)
        ).fetchall()
        return [OutboxMessage(s, t, bytes(b), json.loads(h), q) for s, t, b, h, q in rows]

    def ack(self, seq: int) -> bool:
        """Remove message ``seq`` (it was delivered). False if it was not queued."""
        row = self._db.execute("DELETE FROM outbox WHERE seq = ? RETURNING size", (seq,)).fetchone()
        if row is None:
            return False
        self._depth -= 1
        self._bytes -= int(row[0])
        return True

    def ack_many(self, seqs: list[int]) -> int:
        """Remove messages ``seqs`` in one transaction (one fsync, not one per message): all or none
        are removed if the process dies meanwhile. Returns how many were queued."""
        removed = 0
        freed = 0
        with self._db:  # sqlite3's context manager: BEGIN ... COMMIT, ROLLBACK on an exception
            self._db.execute("BEGIN")
            for seq in seqs:
                row = self._db.execute("DELETE FROM outbox WHERE seq = ? RETURNING size", (seq,)).fetchone()
                if row is not None:
                    removed += 1
                    freed += int(row[0])
        self._depth -= removed
        self._bytes -= freed
        return removed

    async def replay(self, send: Send, *, batch: int = 100) -> int:
        """Send queued messages in order via ``await send(topic, body, headers)``.

        Each message is removed only after ``send`` returns; the first exception stops the
        replay and propagates nothing -- the failed message and all later ones stay queued.
        Returns how many were delivered.
        """
        delivered = 0
        while True:
            messages = self.peek(batch)
            if not messages:
                return delivered
            for msg in messages:
                try:
                    await send(msg.topic, msg.body, msg.headers)
                except Exception:
                    return delivered
                self.ack(msg.seq)
                delivered += 1
                self.replayed += 1

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
