"""Persisted dead letters: the runtime's dead-letter channel writes each rejected message here."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from forge_core.storage.tables import dead_letters_table

__all__ = ["SqlDeadLetterStore"]

_LIMITS = {"reason": 64, "transport": 128, "topic": 512, "component": 128, "message_type": 256}


def _fit(value: Any, limit: int) -> str | None:
    # A dead letter must never be lost because a topic is too long for its column.
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body).decode("utf-8", errors="backslashreplace")
    if isinstance(body, str):
        return body
    return json.dumps(body, default=str, ensure_ascii=False)


def _as_datetime(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise TypeError(f"received_at must be a datetime or epoch seconds, not {type(value).__name__}")


class SqlDeadLetterStore:
    """Dead letters in table ``forge_dead_letters`` (created by core's first migration).

    A record is a dict with ``reason``, ``transport``, ``topic`` and optionally ``component``,
    ``message_type``, ``errors`` (list), ``headers`` (dict), ``body`` (bytes/str/JSON-able)
    and ``received_at`` (datetime or epoch seconds; pass the runtime clock's time, default now).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _row(record: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {name: _fit(record.get(name), limit) for name, limit in _LIMITS.items()}
        for required in ("reason", "transport", "topic"):
            if row[required] is None:
                row[required] = ""
        row["received_at"] = _as_datetime(record.get("received_at"))
        row["errors"] = json.dumps(list(record.get("errors") or []), default=str, ensure_ascii=False)
        row["headers"] = json.dumps(dict(record.get("headers") or {}), default=str, ensure_ascii=False)
        row["body"] = _body_text(record.get("body"))
        return row

    def save(self, record: dict[str, Any]) -> int:
        """Insert one dead letter and return its id."""
        with self.engine.begin() as conn:
            result = conn.execute(dead_letters_table.insert().values(**self._row(record)))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def save_many(self, records: list[dict[str, Any]]) -> int:
        """Insert many dead letters in one transaction (one executemany); returns how many. Used by
        the runtime's recorder thread, so a flood costs one round trip per batch, not per letter."""
        if not records:
            return 0
        rows = [self._row(record) for record in records]
        with self.engine.begin() as conn:
            conn.execute(dead_letters_table.insert(), rows)
        return len(rows)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` dead letters, newest first, with JSON fields decoded."""
        query = sa.select(dead_letters_table).order_by(dead_letters_table.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = []
        for row in rows:
            item = dict(row)
            item["errors"] = json.loads(item["errors"])
            item["headers"] = json.loads(item["headers"])
            if item["received_at"].tzinfo is None:  # SQLite does not keep the zone; we store UTC
                item["received_at"] = item["received_at"].replace(tzinfo=UTC)
            out.append(item)
        return out

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(dead_letters_table)).scalar_one())
