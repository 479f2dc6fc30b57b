"""The storage tests' databases (SQLite, PostgreSQL, the TimescaleDB test server) for the migration tests."""

from __future__ import annotations

from ..storage.conftest import pg_series_db, timescale_server, ts_engine  # noqa: F401 (fixtures)
