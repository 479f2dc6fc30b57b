"""``forge --help`` drawn without typer's rich help module (src/forge_core/cli/root_help.py): the
same options and command panels, a help text's first paragraph on one line, and the module that
costs 90-140 ms of start-up (markdown, traceback, pretty) not imported for it."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from forge_core.cli import build_app
from forge_core.cli.root_help import first_paragraph
from forge_core.plugins import get_plugin_manager


def _help(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "forge_core.cli", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TERMINAL_WIDTH": "100", **(env or {})})


def test_the_root_help_lists_options_and_commands_by_panel_without_typers_rich_help_module() -> None:
    done = _help()
    assert done.returncode == 0, done.stderr[-2000:]
    page = done.stdout
    assert "Usage: forge [OPTIONS] COMMAND [ARGS]..." in page
    assert page.index("─ Options ") < page.index("─ Commands ")
    for option, words in (("--version", "Print forge-core's version"), ("--verbose", "[default: 0]"),
                          ("--help", "Show this message and exit.")):
        line = next(line for line in page.splitlines() if option in line)
        assert words in line or words in page[page.index(line):page.index(line) + 300], (option, page)
    for command in ("validate", "run", "plugins", "drill", "asyncapi", "new", "schemas", "db"):
        assert f"│ {command} " in page, (command, page)
    if "─ Plugin commands " in page:  # the example plants installed here add their groups after the core's
        assert page.index("─ Commands ") < page.index("─ Plugin commands ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "forge_core.cli.root_help" in imported and "typer.rich_utils" not in imported
    assert "rich.markdown" not in imported


def test_a_commands_help_is_still_typers() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "forge_core.cli", "validate", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Usage: " in done.stdout and "typer.rich_utils" in done.stderr


def test_without_rich_typer_falls_back_to_clicks_plain_help() -> None:
    done = _help({"TYPER_USE_RICH": "0"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: forge [OPTIONS] COMMAND [ARGS]..." in done.stdout and "╭─" not in done.stdout
    assert "forge_core.cli.root_help" not in done.stderr


def test_the_same_page_through_a_test_runner() -> None:
    result = CliRunner().invoke(build_app(get_plugin_manager()), ["--help"], env={"TERMINAL_WIDTH": "120"})
    assert result.exit_code == 0 and "─ Commands " in result.stdout and "check-plugin" in result.stdout


def test_first_paragraph_joins_a_docstrings_hard_wraps() -> None:
    assert first_paragraph("Write the AsyncAPI document:\n  servers, channels.\n\nMore detail.") == (
        "Write the AsyncAPI document: servers, channels.")
    assert first_paragraph(None) == first_paragraph("") == ""
