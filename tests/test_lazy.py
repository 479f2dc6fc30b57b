"""Start-up (issue 17 item 5): ``import forge_core`` loads none of the heavy libraries, and the
lazy exports still give the whole public API (src/forge_core/_lazy.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Libraries `import forge_core` must not load: its lazy exports load them on first use.
HEAVY = ("sqlalchemy", "alembic", "jsonschema", "jsonschema_rs", "pydantic", "opentelemetry", "yaml", "asyncio")


def loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_forge_core_loads_no_heavy_library() -> None:
    assert loaded_after("import forge_core") & set(HEAVY) == set()


@pytest.mark.parametrize("package", ["forge_core.tactics", "forge_core.tactics.leader", "forge_core.storage",
                                     "forge_core.runtime", "forge_core.plugin"])
def test_subpackages_load_no_sqlalchemy_until_used(package: str) -> None:
    assert loaded_after(f"import {package}") & {"sqlalchemy", "alembic"} == set()


def test_forge_version_loads_no_plugin_and_no_sqlalchemy() -> None:
    code = "from forge_core.cli.main import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass"
    loaded = loaded_after(code)
    assert loaded & {"sqlalchemy", "alembic", "pydantic", "jsonschema", "forge_mqtt", "forge_kafka"} == set()


def test_lazy_exports_resolve_to_the_defining_objects() -> None:
    import forge_core
    from forge_core import tactics
    from forge_core.bus import MessageBus
    from forge_core.messages import deadletter
    from forge_core.tactics.leader.sql import SqlLeaseBackend

    assert forge_core.MessageBus is MessageBus
    assert forge_core.dead_letters is deadletter
    assert tactics.SqlLeaseBackend is SqlLeaseBackend
    for name in forge_core.__all__:
        assert getattr(forge_core, name) is not None
    assert set(forge_core.__all__) <= set(dir(forge_core))


def test_unknown_names_still_raise_attribute_error() -> None:
    import forge_core
    from forge_core import storage

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = forge_core.Nope
    with pytest.raises(ImportError):
        from forge_core.storage import nope  # noqa: F401
    assert storage.engine.DEFAULT_DATABASE_URL  # a submodule is still reachable as an attribute


def test_a_tuple_of_exports_is_built_on_first_use(monkeypatch) -> None:
    """``tuples``: a plugin's MESSAGE_TYPES, the values of its type constants, without importing them at load."""
    import types

    from forge_core._lazy import lazy_exports

    package = types.ModuleType("acme_lazy")
    monkeypatch.setitem(sys.modules, "acme_lazy", package)
    getattr_, dir_ = lazy_exports("acme_lazy", {"PING": "json:dumps", "PONG": "json:loads"},
                                  tuples={"MESSAGE_TYPES": ("PONG", "PING")})
    assert "MESSAGE_TYPES" in dir_() and not hasattr(package, "MESSAGE_TYPES")
    assert getattr_("MESSAGE_TYPES") == (json.loads, json.dumps)
    assert (json.loads, json.dumps) == package.MESSAGE_TYPES and package.PING is json.dumps  # cached


def test_plugins_message_types_are_their_constants() -> None:
    import forge_mms
    import forge_sched

    assert forge_mms.MESSAGE_TYPES[0] == forge_mms.STORAGE_LEVELS and len(set(forge_mms.MESSAGE_TYPES)) == 8
    assert forge_sched.ENDPOINT in forge_sched.MESSAGE_TYPES
