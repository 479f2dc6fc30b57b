"""Meta-tests that keep the settings docs true: every table is generated from its model, and every
plugin's declared settings have a table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from forge_core.plugin import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))


def test_settings_tables_match_their_models():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_settings_docs.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_plugin_settings_model_has_a_docs_table():
    plugins = get_plugin_manager()
    plugins.collect()
    missing = []
    for registry in (plugins.transports, plugins.components):
        for entry in registry:
            info = plugins.infos.get(entry.plugin or "")
            if entry.settings is None or info is None or info.builtin or not info.distribution.startswith("forge-"):
                continue  # core's built-ins are documented on their own pages; example plants are not plugins
            marker = f"<!-- settings-table: {entry.settings.__module__}:{entry.settings.__name__} -->"
            if marker not in DOCS:
                missing.append(f"{entry.name} ({entry.plugin}): {marker}")
    assert not missing, "settings without a generated docs table:\n" + "\n".join(missing)
