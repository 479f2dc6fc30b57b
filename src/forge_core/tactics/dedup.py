"""Deduplication: a time window for repeated events, idempotency keys for commands.

* :class:`WindowDeduplicator` -- the seed's 1 s heartbeat window: one event per
  ``(source, type)`` per window passes; repeats inside it are dropped. Memory stays bounded
  because expired keys are purged oldest-first on every call.
* :class:`IdempotencyKeys` -- at-least-once delivery redelivers commands; a handler asks
  ``first_time(command_id)`` and applies the command only when it is True, so a redelivery has
  no second effect. Bounded by ``capacity`` (oldest keys evicted) and optionally ``ttl``; a
  :class:`KeyStore` makes the memory survive restarts.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

from forge_core.clock import Clock, RealClock

__all__ = ["IdempotencyKeys", "KeyStore", "SqliteKeyStore", "WindowDeduplicator"]


class WindowDeduplicator:
    """Drops an event if one with the same ``(source, type)`` was accepted < ``window`` s ago."""

    def __init__(self, window: float = 1.0, clock: Clock | None = None) -> None:
        if window <= 0:
            raise ValueError(f"WindowDeduplicator: window must be > 0 s, got {window!r}")
        self.window = float(window)
        self.clock = clock or RealClock()
        self._accepted: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.dropped = 0

    def seen(self, source: str, type: str) -> bool:
        """True (drop it) if an event of this kind was accepted within the window; else accept it."""
        now = self.clock.monotonic()
        self._purge(now)
        key = (source, type)
        if key in self._accepted:  # purge left only keys accepted within the window
            self.dropped += 1
            return True
        self._accepted[key] = now
        return False

    def _purge(self, now: float) -> None:
        accepted = self._accepted
        while accepted:
            key, at = next(iter(accepted.items()))
            if now - at < self.window:
                break
            del accepted[key]

    def __len__(self) -> int:
        return len(self._accepted)


@runtime_checkable
class KeyStore(Protocol):
    """Durable set of processed command keys."""

    def add(self, key: str) -> bool:
        """Record ``key``; True if it was not there before (atomically)."""


class SqliteKeyStore:
    """A :class:`KeyStore` in a SQLite file (one INSERT OR IGNORE per new key)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS idempotency_keys (key TEXT PRIMARY KEY)")

    def add(self, key: str) -> bool:
        return (
            self._db.execute("INSERT OR IGNORE INTO idempotency_keys (key) VALUES (?)", (key,)).rowcount == 1
        )

    def close(self) -> None:
        self._db.close()


class IdempotencyKeys:
    """Remembers command keys so each is applied once.

    In memory an LRU of ``capacity`` keys (and, with ``ttl``, only keys seen within ``ttl``
    seconds); a key evicted from memory is still caught by ``store`` if one is given. Without a
    store, a redelivery arriving after eviction would be applied again: size ``capacity`` above
    the number of commands that can be in flight for redelivery.
    """

    def __init__(
        self,
        capacity: int = 100_000,
        ttl: float | None = None,
        store: KeyStore | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"IdempotencyKeys: capacity must be >= 1, got {capacity!r}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"IdempotencyKeys: ttl must be > 0 s or None, got {ttl!r}")
        self.capacity = capacity
        self.ttl = ttl
        self.store = store
        self.clock = clock or RealClock()
        self._keys: OrderedDict[str, float] = OrderedDict()
        self.duplicates = 0

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered (apply the command); False on every repeat."""
        now = self.clock.monotonic()
        if self.ttl is not None:
            while self._keys:
                old, at = next(iter(self._keys.items()))
                if now - at < self.ttl:
                    break
                del self._keys[old]
        if key in self._keys:
            self._keys.move_to_end(key)
            self.duplicates += 1
            return False
        fresh = self.store.add(key) if self.store is not None else True
        self._keys[key] = now
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        if not fresh:
            self.duplicates += 1
        return fresh

    def __len__(self) -> int:
        return len(self._keys)
