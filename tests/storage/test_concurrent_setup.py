"""Processes of one plant start together: migrations and lazily created tables must not race."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from forge_core.storage import MigrationRegistry, create_engine_from_url, upgrade
from forge_core.tactics.leader import SqlLeaseBackend


def run_together(count, work):
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_upgrades_on_postgresql_serialise(postgres_url):
    def migrate() -> None:
        engine = create_engine_from_url(postgres_url)
        try:
            upgrade(engine, MigrationRegistry())
        finally:
            engine.dispose()

    assert run_together(4, migrate) == []
    engine = create_engine_from_url(postgres_url)
    assert {"forge_dead_letters", "forge_kv"} <= set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_concurrent_lease_backends_create_their_table_once(postgres_url):
    def start() -> None:
        engine = create_engine_from_url(postgres_url)
        try:
            SqlLeaseBackend(engine, table="forge_leases_race")
        finally:
            engine.dispose()

    assert run_together(4, start) == []
