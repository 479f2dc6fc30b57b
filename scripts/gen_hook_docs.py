"""Regenerate the reference half of docs/hooks.md from the hookspec docstrings.

    .venv/bin/python scripts/gen_hook_docs.py

tests/test_hookspecs.py fails when a hook's signature is missing from docs/hooks.md, so run
this after adding or changing a hook.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from forge_core import hookspecs

MARKER = "<!-- reference: generated from src/forge_core/hookspecs/ by scripts/gen_hook_docs.py"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def reference() -> str:
    out: list[str] = []
    current = None
    for name in hookspecs.hook_names():
        function = getattr(hookspecs, name)
        source = inspect.getsource(inspect.getmodule(function))  # the phase's module (hookspecs/*.py)
        banners = [(m.start(), m.group(1)) for m in re.finditer(r"# -{20,}\n# (.+?)\n", source)]
        position = source.index(f"def {name}(")
        title = [t for start, t in banners if start < position][-1].split(":")[0]
        if title != current:
            out.append(f"\n## {title}\n")
            current = title
        params = ", ".join(inspect.signature(function).parameters)
        flags = [key for key, value in function.forge_spec.items() if value is True]
        doc = inspect.getdoc(function) or ""
        doc = re.sub(r":param (\w+):", r"- `\1`:", doc)
        doc = doc.replace(":returns:", "- returns:")
        doc = re.sub(r"\.\. versionadded:: ([\d.]+)", r"*Added in \1.*", doc)
        doc = re.sub(r":(?:class|mod|func):`~?([^`]+)`", r"`\1`", doc)
        out.append(f"\n### `{name}({params})`\n")
        if flags:
            out.append(f"pluggy options: {', '.join(flags)}\n")
        out.append("\n" + doc + "\n")
    return "\n".join(out)


def main() -> None:
    text = DOCS.read_text(encoding="utf-8")
    head, _, _ = text.partition(MARKER)
    DOCS.write_text(head + MARKER + "; edit the docstrings, then run it -->\n" + reference(), encoding="utf-8")


if __name__ == "__main__":
    main()
