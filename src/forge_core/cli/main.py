"""The ``forge`` command: typer commands over the plant loader and the runtime.

The app is built by :func:`build_app` from a :class:`~forge_core.plugins.Plugins`, so that
commands contributed through ``forge_register_commands`` join it and tests can build an app
over any set of plugins. A :class:`~forge_core.errors.ForgeError` from any command (plugin
commands included) prints as its message, without a traceback, and exits 1; ``FORGE_DEBUG=1``
shows the traceback instead.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from forge_core import __version__
from forge_core.cli.output import error
from forge_core.errors import ForgeError, PluginError

if TYPE_CHECKING:  # the plugin manager pulls in the registries, schemas and settings: not for --version
    from forge_core.plugins import Plugins


def debug_enabled() -> bool:
    return os.environ.get("FORGE_DEBUG", "") not in ("", "0")


class ForgeGroup(TyperGroup):
    """Root command group: turns deliberate errors into a red message and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ForgeError as exc:
            if debug_enabled():
                raise
            error(str(exc))
            raise typer.Exit(1) from None


@dataclass
class CliState:
    """What commands share: the plugins the app was built from, and how to get fresh ones.

    Loading a plant registers its local plugins and schemas into a manager, so every command
    that loads a plant asks :meth:`fresh` for its own.
    """

    plugins: Plugins
    make_plugins: Callable[[], Plugins]
    #: ``forge -v``/``-vv`` before the command: ``forge run`` logs at least this much
    verbose: int = 0

    def fresh(self) -> Plugins:
        return self.make_plugins()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forge {__version__}")
        raise typer.Exit()


def build_app(plugins: Plugins | None = None, *, make_plugins: Callable[[], Plugins] | None = None) -> typer.Typer:
    """The full ``forge`` app: core commands plus those ``plugins`` contribute.

    ``make_plugins`` builds the manager each plant-loading command uses (default: a fresh
    :func:`get_plugin_manager`, i.e. everything installed).
    """
    from forge_core.cli import asyncapi, db, drill, new, run, schemas, validate
    from forge_core.cli import plugins as plugins_cmd
    from forge_core.plugins import get_plugin_manager

    plugins = plugins if plugins is not None else get_plugin_manager()
    state = CliState(plugins, make_plugins or get_plugin_manager)
    app = typer.Typer(
        cls=ForgeGroup,
        name="forge",
        help="Forge: build, check and run factory control plants assembled from plugins.",
        no_args_is_help=True,
        add_completion=True,  # forge --install-completion [SHELL], forge --show-completion [SHELL]
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        ctx: typer.Context,
        version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                              help="Print forge-core's version and exit.")] = False,
        verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                             help="Log more, for any command (-v info, -vv debug) on stderr.")] = 0,
    ) -> None:
        """Forge: build, check and run factory control plants assembled from plugins.

        Set FORGE_DEBUG=1 to see tracebacks of errors.
        """
        state.verbose = verbose
        if verbose and ctx.invoked_subcommand != "run":  # run sets up its own (plant time under --simulate)
            from forge_core.cli.output import log_to_stderr

            ctx.call_on_close(log_to_stderr(verbose))

    new.register(app, state)
    validate.register(app, state)
    run.register(app, state)
    plugins_cmd.register(app, state)
    schemas.register(app, state)
    db.register(app, state)
    drill.register(app, state)
    asyncapi.register(app, state)
    add_plugin_commands(app, plugins)
    return app


#: Where plugin command groups are listed in ``forge --help``, apart from Forge's own commands.
PLUGIN_PANEL = "Plugin commands"
CORE_COMMANDS = frozenset({"new", "validate", "run", "plugins", "schemas", "db", "drill", "asyncapi"})


def add_plugin_commands(app: typer.Typer, plugins: Plugins) -> None:
    """Join the commands plugins registered, each plugin's under its own name: ``forge <plugin>
    <command>``. Top-level names belong to Forge, so no installed plugin (an example plant
    included) can add a bare ``forge monitor`` or take a name from another; ``forge --help`` lists
    one group per plugin with commands, in its own panel. A plugin that registers one Typer app
    named after itself has that app as its group (``forge acme ...``, not ``forge acme acme ...``).
    """
    taken = {info.name for info in app.registered_commands if info.name} | {
        group.name for group in app.registered_groups if group.name} | set(CORE_COMMANDS)
    by_plugin: dict[str, list[Any]] = {}
    for entry in plugins.collect_commands():
        by_plugin.setdefault(entry.plugin or "forge", []).append(entry)
    for plugin, entries in by_plugin.items():
        name = plugin.removeprefix("local:")
        if name in taken:
            raise PluginError(f"its CLI commands would be `forge {name} ...`, but forge already has a command "
                              f"{name!r}; rename the plugin's entry point", plugin=plugin,
                              hook="forge_register_commands")
        info = plugins.infos.get(plugin)
        origin = f" ({info.distribution} {info.version})" if info is not None and info.distribution else ""
        if len(entries) == 1 and entries[0].name == name and isinstance(entries[0].value, typer.Typer):
            app.add_typer(entries[0].value, name=name, help=entries[0].description or f"Commands of plugin "
                          f"{plugin}{origin}.", rich_help_panel=PLUGIN_PANEL)
            taken.add(name)
            continue
        group = typer.Typer(help=f"Commands of plugin {plugin}{origin}.", no_args_is_help=True)
        for entry in entries:
            _add_command(group, entry)
        app.add_typer(group, name=name, rich_help_panel=PLUGIN_PANEL)
        taken.add(name)


def _add_command(group: typer.Typer, entry: Any) -> None:
    command = entry.value
    if isinstance(command, typer.Typer):
        group.add_typer(command, name=entry.name, help=entry.description or None)
    elif callable(command):
        help_text = entry.description or inspect.getdoc(command) or None
        group.command(name=entry.name, help=help_text)(command)
    else:
        raise PluginError(f"CLI command {entry.name!r} must be a typer.Typer app or a function, got "
                          f"{type(command).__name__}", plugin=entry.plugin, hook="forge_register_commands")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``forge``)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # answered before the plugins load: they import their libraries (docs/performance.md)
        typer.echo(f"forge {__version__}")
        sys.exit(0)
    try:
        app = build_app()
    except ForgeError as exc:  # a broken plugin: nothing can run until it is fixed or disabled
        if debug_enabled():
            raise
        error(str(exc))
        sys.exit(1)
    app(args=argv, prog_name="forge")

