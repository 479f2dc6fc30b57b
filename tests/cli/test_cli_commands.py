"""``forge plugins``, ``forge schemas``, ``forge db`` and commands contributed by plugins."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from forge_core import __version__, hookimpl
from forge_core.cli import build_app
from forge_core.errors import ForgeError, PluginError
from forge_core.plugins import get_plugin_manager


def commands_plugin(*entries: tuple[str, object]) -> SimpleNamespace:
    @hookimpl
    def forge_register_commands(registry):
        for name, command in entries:
            registry.add(name, command, help=f"{name} from a plugin")

    return SimpleNamespace(forge_register_commands=forge_register_commands)


def test_plugin_commands_join_the_cli_under_the_plugins_name() -> None:
    group = typer.Typer()

    @group.command()
    def hello(who: str = "plant") -> None:
        typer.echo(f"hello {who}")

    @group.command()
    def bye() -> None:
        typer.echo("bye")

    def greet(name: str) -> None:
        """Greet someone."""
        typer.echo(f"greetings {name}")

    def fail() -> None:
        raise ForgeError("the acme press is not reachable at 10.0.0.7")

    plugin = commands_plugin(("acme", group), ("greet", greet), ("fail", fail))
    plugins = get_plugin_manager(autoload=False, extra=[("acmecli", plugin)])
    app = build_app(plugins)
    runner = CliRunner()
    assert runner.invoke(app, ["acmecli", "acme", "hello", "--who", "oven"]).stdout == "hello oven\n"
    assert runner.invoke(app, ["acmecli", "greet", "ada"]).stdout == "greetings ada\n"
    assert runner.invoke(app, ["greet", "ada"]).exit_code != 0, "no bare top-level plugin commands"
    top = runner.invoke(app, ["--help"]).stdout
    assert "Plugin commands" in top and "acmecli" in top and "greet" not in top
    assert "greet" in runner.invoke(app, ["acmecli", "--help"]).stdout
    failed = runner.invoke(app, ["acmecli", "fail"])
    assert failed.exit_code == 1
    assert "the acme press is not reachable at 10.0.0.7" in failed.output
    listed = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    assert next(p for p in listed if p["name"] == "acmecli")["provides"] == {"commands": ["acme", "greet", "fail"]}


def test_a_plugins_own_typer_app_named_after_it_is_its_group() -> None:
    group = typer.Typer()

    @group.command()
    def hello() -> None:
        typer.echo("hello from acme")

    @group.command()
    def bye() -> None:
        typer.echo("bye")

    plugins = get_plugin_manager(autoload=False, extra=[("acme", commands_plugin(("acme", group)))])
    assert CliRunner().invoke(build_app(plugins), ["acme", "hello"]).stdout == "hello from acme\n"


def test_plugin_named_like_a_core_command_is_refused() -> None:
    plugin = commands_plugin(("upgrade", lambda: None))
    plugins = get_plugin_manager(autoload=False, extra=[("db", plugin)])
    with pytest.raises(PluginError, match=r"plugin 'db', hook 'forge_register_commands': its CLI commands would be "
                                          r"`forge db \.\.\.`, but forge already has a command 'db'"):
        build_app(plugins)


def test_a_core_command_name_inside_a_plugins_group_is_fine() -> None:
    plugins = get_plugin_manager(autoload=False, extra=[("clash", commands_plugin(("run", lambda: None)))])
    app = build_app(plugins)
    assert CliRunner().invoke(app, ["clash", "run"]).exit_code == 0


def test_version_and_help(invoke) -> None:
    version, what_runs = invoke("--version").stdout.strip().splitlines()[:2]
    assert version == f"forge {__version__}"
    assert what_runs == "pure Python" or what_runs.startswith("compiled: ")  # forge_core.compiled.summary
    top = invoke("--help").stdout
    for command in ("new", "validate", "run", "plugins", "schemas", "db"):
        assert command in top


def test_plugins_table_lists_the_builtin(invoke) -> None:
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "forge_core" in result.stdout and "forge.logger" in result.stdout and "builtin" in result.stdout


def test_schemas_list_and_show(invoke, bakery: Path) -> None:
    types = {row["type"]: row for row in json.loads(invoke("schemas", "list", "--json").stdout)}
    assert "forge.deadletter" in types and "bakery.reading" not in types
    with_plant = {row["type"]: row for row in json.loads(invoke("schemas", "list", "--plant", bakery,
                                                                   "--json").stdout)}
    assert with_plant["bakery.reading"]["plugin"] == "plant:bakery"
    shown = invoke("schemas", "show", "bakery.command", "--plant", bakery)
    assert shown.exit_code == 0 and '"set_setpoint"' in shown.stdout
    unknown = invoke("schemas", "show", "bakery.nope", "--plant", bakery)
    assert unknown.exit_code == 1 and "has no registered schema" in unknown.output


def test_schemas_validate_shows_each_pointer(invoke, bakery: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"machine": "m", "seq": 0, "value": "hot", "setpoint": 1}))
    result = invoke("schemas", "validate", bad, "--type", "bakery.reading", "--plant", bakery)
    assert result.exit_code == 1
    assert "/seq: 0 is less than the minimum of 1" in result.stdout
    assert "/value: 'hot' is not of type 'number'" in result.stdout
    data = json.loads(invoke("schemas", "validate", bad, "-t", "bakery.reading", "--plant", bakery, "--json").stdout)
    assert {e["pointer"] for e in data["errors"]} == {"/seq", "/value"}


def test_schemas_validate_cloudevents_and_bare_payloads(invoke, bakery: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"specversion": "1.0", "id": "1", "source": "test", "type": "bakery.command",
                                 "data": {"action": "set_setpoint", "value": 250}}))
    ok = invoke("schemas", "validate", event, "--plant", bakery)
    assert ok.exit_code == 0 and "valid bakery.command" in ok.stdout
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"action": "set_setpoint"}))
    assert invoke("schemas", "validate", bare, "--plant", bakery).exit_code == 1  # no type: say --type
    missing = invoke("schemas", "validate", bare, "--type", "bakery.command", "--plant", bakery)
    assert missing.exit_code == 1 and "'value' is a required property" in missing.stdout


def test_db_upgrade_then_current(invoke, bakery: Path, monkeypatch) -> None:
    monkeypatch.setenv("FORGE_DISABLE_PLUGIN_AUTOLOAD", "1")  # only core's migrations, whatever is installed
    before = json.loads(invoke("db", "current", bakery, "--json").stdout)
    assert before["current"] == {"forge_core": None}
    upgraded = invoke("db", "upgrade", bakery)
    assert upgraded.exit_code == 0 and "upgraded" in upgraded.stdout
    after = json.loads(invoke("db", "current", bakery, "--json").stdout)
    assert after["current"]["forge_core"]
    assert after["url"].endswith("bakery/.forge/plant.db")


def test_completion_installs_and_completes(forge, forge_env, tmp_path: Path) -> None:
    import subprocess
    import sys

    # typer detects the shell from the parent processes and ignores the one named unless detection is
    # off (its own tests' switch): run from `sh -c` (nohup, cron), "bash" was refused as "Shell sh"
    explicit = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = forge("--show-completion", "bash", **explicit)
    assert shown.returncode == 0 and "_FORGE_COMPLETE=complete_bash" in shown.stdout
    installed = forge("--install-completion", "bash", HOME=str(tmp_path), SHELL="/bin/bash", **explicit)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "forge.sh"
    assert script.read_text().strip() == shown.stdout.strip()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # what the installed script asks forge: the words so far; forge answers the candidates
    env = forge_env(_FORGE_COMPLETE="complete_bash", COMP_WORDS="forge run --sim", COMP_CWORD="2")
    asked = subprocess.run([sys.executable, "-m", "forge_core.cli"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert asked.stdout.split() == ["--simulate"]


def test_root_verbose_counts_for_any_command(app, monkeypatch) -> None:
    import logging

    monkeypatch.setenv("COLUMNS", "200")
    levels: list[int] = []
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", logging.WARNING)

    @app.command("probe-level")
    def probe() -> None:
        levels.append(root.getEffectiveLevel())

    runner = CliRunner()
    for args in (["probe-level"], ["-v", "probe-level"], ["-vv", "probe-level"], ["--verbose", "-v", "probe-level"]):
        assert runner.invoke(app, args).exit_code == 0
    assert levels == [logging.WARNING, logging.INFO, logging.DEBUG, logging.DEBUG]
    assert root.level == logging.WARNING  # the handler and level go again when the command ends
