"""The transactions ledger lives in tables of the Alembic revision b2mml_0001 (branch 'b2mml',
registered through forge_register_migrations), not create_all."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from forge_core.plugin import MigrationRegistry, get_plugin_manager
from forge_core.storage import upgrade

from forge_b2mml import Ledger, LedgerMissing


def registry() -> MigrationRegistry:
    plugins = get_plugin_manager()
    plugins.collect()
    return plugins.collect_migrations(MigrationRegistry(include_core=False))


def test_the_plugin_registers_its_branch():
    entries = {e.name: e for e in registry()}
    assert "b2mml" in entries and entries["b2mml"].versions_dir.name == "migrations"


def test_an_unmigrated_database_is_refused_naming_the_fix(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(LedgerMissing, match="forge db upgrade"):
        Ledger(engine)
    assert sa.inspect(engine).get_table_names() == [], "the ledger creates nothing itself"


def test_upgrade_creates_the_tables_and_one_export_per_order(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plant.db'}")
    upgrade(engine, registry())
    assert {"b2mml_keys", "b2mml_pending", "b2mml_exports"} <= set(sa.inspect(engine).get_table_names())
    ledger = Ledger(engine)
    assert ledger.add_export("PERF-1", "ord-1", b"<x/>", 0.0)
    assert not ledger.add_export("PERF-1b", "ord-1", b"<x/>", 1.0), "one performance document per order"
    assert ledger.add_export("SHOW-1", None, b"<x/>", 1.0, kind="show", needs_ack=False)
    assert ledger.add_export("SHOW-2", None, b"<x/>", 1.0, kind="show", needs_ack=False), "NULL order ids differ"
    assert ledger.exported_orders() == ["ord-1"]
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):  # the database itself refuses a second
        conn.execute(sa.text("INSERT INTO b2mml_exports (export_id, order_id, kind, needs_ack, body, attempts, "
                             "created_at, next_at, acknowledged) VALUES ('X', 'ord-1', 'performance', 1, x'00', 0, "
                             "0, 0, 0)"))
