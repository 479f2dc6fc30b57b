"""Regenerate the settings tables in docs/ from the Settings models that declare them.

    .venv/bin/python scripts/gen_settings_docs.py          # rewrite the tables
    .venv/bin/python scripts/gen_settings_docs.py --check  # exit 1 if any table is stale

A table is generated where a docs page has a marker line naming its model, e.g.
``<!-- settings-table: forge_mqtt.settings:MqttSettings -->``; the Markdown table right below
the marker is replaced by ``forge_core.settings.settings_table(model)``. tests/test_docs.py
runs the check, so a changed default or description cannot leave the docs behind.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

from forge_core.settings import settings_table

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKER = re.compile(r"^<!-- settings-table: (?P<module>[\w.]+):(?P<name>\w+) -->$")


def regenerate(text: str, where: str) -> str:
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        match = MARKER.match(line.strip())
        if not match:
            continue
        model = getattr(importlib.import_module(match["module"]), match["name"], None)
        if model is None:
            raise SystemExit(f"{where}: marker names {match['module']}:{match['name']}, which does not exist")
        while i < len(lines) and lines[i].startswith("|"):
            i += 1  # the old table
        out.append(settings_table(model))
    return "".join(out)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        if "<!-- settings-table:" not in text:
            continue
        new = regenerate(text, str(page))
        if new != text:
            stale.append(page.relative_to(DOCS.parent))
            if not check:
                page.write_text(new, encoding="utf-8")
    if stale:
        verb = "stale" if check else "regenerated"
        print(f"{verb}: " + ", ".join(map(str, stale)))
        if check:
            print("run: .venv/bin/python scripts/gen_settings_docs.py")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
