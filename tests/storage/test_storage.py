"""Engines, per-plugin migrations and the dead-letter store, on SQLite and real PostgreSQL."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from forge_core.errors import DuplicateRegistration
from forge_core.storage import (
    MigrationRegistry,
    SqlDeadLetterStore,
    StorageError,
    create_engine_from_url,
    current,
    history,
    mask_url,
    upgrade,
)
from forge_core.storage.engine import normalize_url
from forge_core.testing.servers import find_free_port


def _fake_plugin_versions(root: Path, name: str = "acme") -> Path:
    versions = root / f"{name}_versions"
    versions.mkdir()
    (versions / "0001_acme.py").write_text(
        textwrap.dedent(
            f'''
            """acme widgets"""
            import sqlalchemy as sa
            from alembic import op

            revision = "{name}_0001"
            down_revision = None
            branch_labels = ("{name}",)
            depends_on = None


            def upgrade():
                op.create_table("{name}_widgets", sa.Column("id", sa.Integer, primary_key=True))


            def downgrade():
                op.drop_table("{name}_widgets")
            '''
        )
    )
    return versions


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/plant.db"
    return request.getfixturevalue("postgres_url")


# -- engine -----------------------------------------------------------------------------------


def test_sqlite_default_in_plant_dir_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine_from_url(None, plant_dir=tmp_path)
    try:
        assert Path(engine.url.database).is_relative_to(tmp_path.resolve())  # type: ignore[arg-type]
        assert Path(engine.url.database).parent.is_dir()  # type: ignore[arg-type]
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_plant_dir_substitution_and_relative_sqlite(tmp_path: Path) -> None:
    assert normalize_url("sqlite:///{plant_dir}/x/db.sqlite", plant_dir=tmp_path).database == str(
        tmp_path.resolve() / "x/db.sqlite"
    )
    assert normalize_url("sqlite:///rel/db.sqlite", plant_dir=tmp_path).database == str(
        tmp_path.resolve() / "rel/db.sqlite"
    )
    with pytest.raises(StorageError, match="plant_dir"):
        normalize_url("sqlite:///{plant_dir}/db.sqlite")


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
def test_postgres_schemes_map_to_psycopg(scheme: str) -> None:
    url = normalize_url(f"{scheme}://u:p@db.example:5432/plant")
    assert url.drivername == "postgresql+psycopg"


def test_bad_url_error_masks_password() -> None:
    with pytest.raises(StorageError) as info:
        create_engine_from_url("nosuchdb://admin:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    assert "admin:***@host" in str(info.value)
    with pytest.raises(StorageError) as info:
        create_engine_from_url("not a url at all :// admin:hunter2@x")
    assert "hunter2" not in str(info.value)


def test_unreachable_server_error_names_masked_url() -> None:
    port = find_free_port()
    with pytest.raises(StorageError, match="cannot connect") as info:
        create_engine_from_url(f"postgresql://forge:hunter2@127.0.0.1:{port}/plant")
    message = str(info.value)
    assert "hunter2" not in message
    assert f"postgresql+psycopg://forge:***@127.0.0.1:{port}/plant" in message


def test_mask_url_without_password() -> None:
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


# -- migrations -------------------------------------------------------------------------------


def test_core_migrations_apply_and_twice_is_noop(db_url: str) -> None:
    engine = create_engine_from_url(db_url)
    try:
        assert upgrade(engine) == ["forge_core_0001"]
        assert {"forge_dead_letters", "forge_kv", "forge_alembic_version"} <= _tables(engine)
        assert upgrade(engine) == ["forge_core_0001"]
        assert current(engine) == {"forge_core": "forge_core_0001"}
    finally:
        engine.dispose()


def test_upgrade_accepts_url_string(tmp_path: Path) -> None:
    assert upgrade("sqlite:///{plant_dir}/db/forge.db", plant_dir=tmp_path) == ["forge_core_0001"]
    assert (tmp_path / "db" / "forge.db").exists()


def test_plugin_branch_applied_alongside_core(db_url: str, tmp_path: Path) -> None:
    registry = MigrationRegistry()
    registry.add("acme", _fake_plugin_versions(tmp_path), plugin="forge-acme")
    engine = create_engine_from_url(db_url)
    try:
        before = history(engine, registry)
        assert {(i.revision, i.branch, i.applied) for i in before} == {
            ("forge_core_0001", "forge_core", False),
            ("acme_0001", "acme", False),
        }
        assert upgrade(engine, registry) == ["acme_0001", "forge_core_0001"]
        assert {"acme_widgets", "forge_dead_letters"} <= _tables(engine)
        assert current(engine, registry) == {"forge_core": "forge_core_0001", "acme": "acme_0001"}
        assert all(i.applied for i in history(engine, registry))
        assert upgrade(engine, registry) == ["acme_0001", "forge_core_0001"]
    finally:
        engine.dispose()


def test_plugin_added_later_is_applied_on_next_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plant.db"
    upgrade(url)
    registry = MigrationRegistry()
    registry.add("acme", _fake_plugin_versions(tmp_path), plugin="forge-acme")
    assert current(url, registry) == {"forge_core": "forge_core_0001", "acme": None}
    upgrade(url, registry)
    assert current(url, registry)["acme"] == "acme_0001"


def test_duplicate_name_names_both_plugins(tmp_path: Path) -> None:
    registry = MigrationRegistry()
    registry.add("acme", _fake_plugin_versions(tmp_path), plugin="forge-acme")
    with pytest.raises(DuplicateRegistration) as info:
        registry.add("acme", tmp_path, plugin="forge-other")
    message = str(info.value)
    assert "forge-acme" in message and "forge-other" in message
    assert info.value.plugin == "forge-other"
    assert info.value.hook == "forge_register_migrations"
    with pytest.raises(DuplicateRegistration, match="forge-core"):
        registry.add("forge_core", tmp_path, plugin="forge-evil")


def test_missing_branch_label_is_explained(tmp_path: Path) -> None:
    versions = _fake_plugin_versions(tmp_path, "acme")
    registry = MigrationRegistry()
    registry.add("widgets", versions, plugin="forge-acme")  # name does not match the label
    with pytest.raises(StorageError, match=r"branch_labels = \('widgets',\)"):
        upgrade(f"sqlite:///{tmp_path}/x.db", registry)


def test_history_without_database() -> None:
    infos = history()
    assert [i.revision for i in infos] == ["forge_core_0001"]
    assert infos[0].applied is None


# -- dead letters -----------------------------------------------------------------------------


def test_dead_letter_store_round_trip(db_url: str) -> None:
    engine = create_engine_from_url(db_url)
    try:
        upgrade(engine)
        store = SqlDeadLetterStore(engine)
        assert store.count() == 0
        when = datetime(2025, 3, 1, 6, 30, tzinfo=UTC)
        first = store.save(
            {
                "reason": "schema",
                "transport": "mqtt",
                "topic": "plant/oven/1/temperature",
                "component": "oven",
                "message_type": "forge.oven.Temperature",
                "errors": ["payload.celsius: 'hot' is not a number"],
                "headers": {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
                "body": b'{"celsius": "hot"}',
                "received_at": when,
            }
        )
        second = store.save({"reason": "handler", "transport": "memory", "topic": "t" * 600, "body": "x"})
        assert second > first
        assert store.count() == 2
        newest, oldest = store.recent(10)
        assert newest["id"] == second and len(newest["topic"]) == 512
        assert newest["component"] is None and newest["errors"] == [] and newest["headers"] == {}
        assert oldest["received_at"] == when
        assert oldest["errors"] == ["payload.celsius: 'hot' is not a number"]
        assert oldest["headers"]["traceparent"].startswith("00-111")
        assert oldest["body"] == '{"celsius": "hot"}'
        assert [r["id"] for r in store.recent(1)] == [second]
    finally:
        engine.dispose()
