"""Plugin commands are lazy (src/forge_core/cli/main.py): ``forge --help`` lists every plugin's group
from the registry alone, the command's module is imported when the group is used, and a path that
does not import is an error naming the plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from forge_core import hookimpl
from forge_core.cli import build_app
from forge_core.plugins import get_plugin_manager


def commands_plugin(*entries: tuple[str, object, str]) -> SimpleNamespace:
    @hookimpl
    def forge_register_commands(registry):
        for name, command, help_text in entries:
            registry.add(name, command, help=help_text)

    return SimpleNamespace(forge_register_commands=forge_register_commands)


@pytest.fixture
def cli_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module with a typer app and a function command, on sys.path, not imported yet."""
    name = f"acme_cli_{abs(hash(str(tmp_path))) & 0xFFFFFF:06x}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''
        import typer

        app = typer.Typer()


        @app.command()
        def press(force: int = 1) -> None:
            typer.echo(f"pressed {force}")


        @app.command()
        def stop() -> None:
            typer.echo("stopped")


        def greet(who: str) -> None:
            """Greet someone."""
            typer.echo(f"hello {who}")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    yield name
    sys.modules.pop(name, None)


def test_help_lists_lazy_groups_without_importing_them(cli_module: str) -> None:
    plugins = get_plugin_manager(autoload=False, extra=[
        ("acme", commands_plugin(("acme", f"{cli_module}:app", "Acme presses: press, stop."))),
        ("hello", commands_plugin(("greet", f"{cli_module}:greet", ""))),
    ])
    app = build_app(plugins)
    runner = CliRunner()
    top = runner.invoke(app, ["--help"]).stdout
    assert "Plugin commands" in top and "Acme presses: press, stop." in top and "Commands of plugin hello." in top
    assert cli_module not in sys.modules
    assert runner.invoke(app, ["acme", "press", "--force", "3"]).stdout == "pressed 3\n"
    assert "stop" in runner.invoke(app, ["acme", "--help"]).stdout
    assert runner.invoke(app, ["hello", "greet", "ada"]).stdout == "hello ada\n"
    listed = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    assert next(p for p in listed if p["name"] == "acme")["provides"] == {"commands": ["acme"]}


def test_a_command_path_that_does_not_import_is_an_error_naming_the_plugin() -> None:
    plugins = get_plugin_manager(autoload=False, extra=[
        ("acme", commands_plugin(("acme", "forge_acme_not_installed.cli:app", "Acme presses."))),
    ])
    app = build_app(plugins)
    runner = CliRunner()
    assert "Acme presses." in runner.invoke(app, ["--help"]).stdout  # listing still works
    failed = runner.invoke(app, ["acme", "press"])
    assert failed.exit_code == 1
    assert ("plugin 'acme', hook 'forge_register_commands': CLI command 'acme': cannot import "
            "'forge_acme_not_installed.cli:app': ModuleNotFoundError") in " ".join(failed.output.split())


#: What a plugin's components and transports bring in; `forge --help` must load none of them.
PLUGIN_LIBRARIES = ("sqlalchemy", "alembic", "asyncua", "grpc", "confluent_kafka", "paho", "lxml", "pydantic",
                    "jsonschema", "jsonschema_rs", "opentelemetry")


def test_forge_help_imports_no_plugin_library() -> None:
    """The real `forge --help` over every installed plugin, in a fresh interpreter: it lists the plugins'
    command groups, and sys.modules afterwards holds none of the libraries their components use."""
    code = textwrap.dedent("""
        import contextlib, io, json, sys
        from forge_core.cli.main import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main(["--help"])
            except SystemExit:
                pass
        print(json.dumps({"help": out.getvalue(), "modules": sorted({m.split(".")[0] for m in sys.modules}),
                          "loaded": sorted(m for m in sys.modules if ".components." in m or m.endswith(".cli"))}))
    """)
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.splitlines()[-1])
    assert set(found["modules"]) & set(PLUGIN_LIBRARIES) == set()
    assert [m for m in found["loaded"] if not m.startswith("forge_core.")] == []  # no plugin's components or CLI
    for group in ("b2mml", "pasta"):  # installed plugins with commands are listed all the same
        assert group in found["help"]
