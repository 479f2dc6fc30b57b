"""The ``forge`` command: typer commands over the plant loader and the runtime.

The app is built by :func:`build_app` from a :class:`~forge_core.plugins.Plugins`, so that
commands contributed through ``forge_register_commands`` join it and tests can build an app
over any set of plugins. A :class:`~forge_core.errors.ForgeError` from any command (plugin
commands included) prints as its message, without a traceback, and exits 1; ``FORGE_DEBUG=1``
shows the traceback instead.

Plugin commands are lazy (click's lazy-group pattern): ``forge --help`` lists each plugin's group
by its name and help from the registry, and a plugin's command module (a ``"module:attribute"``
registration) is imported only when that group is run, asked for its own help or completed.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from forge_core import __version__
from forge_core.errors import ForgeError, PluginError

if TYPE_CHECKING:  # the plugin manager pulls in the registries, schemas and settings: not for --version
    from forge_core.plugins import Plugins


def debug_enabled() -> bool:
    return os.environ.get("FORGE_DEBUG", "") not in ("", "0")


def error(message: str) -> None:
    from forge_core.cli.output import error as print_error  # rich's console: not needed for --help

    print_error(message)


class LazyCommand(TyperCommand):
    """What ``forge --help`` lists for a plugin's command group before it is imported: its name,
    help and panel. :meth:`ForgeGroup.resolve_command` swaps in :meth:`load`'s real command
    whenever the group is run, asked for its help or completed."""

    def __init__(self, name: str, load: Callable[[], Any], *, help: str, panel: str) -> None:
        super().__init__(name, help=help, short_help=help.split("\n", 1)[0], rich_help_panel=panel)
        self._load = load
        self._loaded: Any = None

    def load(self) -> Any:
        """The plugin's real command (a typer group), imported on first call."""
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def invoke(self, ctx: Any) -> Any:  # not reached through ForgeGroup; kept correct anyway
        return self.load().invoke(ctx)


class ForgeGroup(TyperGroup):
    """Root command group: turns deliberate errors into a red message and exit code 1, and holds
    the plugins' lazy command groups (``lazy_commands``, set on a subclass per app)."""

    lazy_commands: dict[str, LazyCommand] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, command in self.lazy_commands.items():
            self.commands.setdefault(name, command)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, LazyCommand):
            command = command.load()  # a PluginError here is printed by invoke below, naming the plugin
        return name, command, rest

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from typer.core import HAS_RICH  # TYPER_USE_RICH=0: click's plain help, as typer would

        if not HAS_RICH or self.rich_markup_mode is None:
            return super().format_help(ctx, formatter)
        from forge_core.cli.root_help import print_root_help  # not typer.rich_utils: see that module

        print_root_help(self, ctx)
        return None

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


def version_lines() -> str:
    """``forge --version``: the version, and what runs: pure Python or N compiled modules (stale ones named)."""
    from forge_core import compiled  # reads the compiled packages' manifests: no plugin is imported

    found = compiled.status()
    lines = f"forge {__version__}\n{compiled.summary(found)}"
    if compiled.problems(found):
        lines += f"\n(rebuild: {compiled.REBUILD}; pure Python: {compiled.PURE}; docs/compiled.md)"
    return lines


def _version(value: bool) -> None:
    if value:
        typer.echo(version_lines())
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
    lazy: dict[str, LazyCommand] = {}
    app = typer.Typer(
        cls=type("ForgeGroup", (ForgeGroup,), {"lazy_commands": lazy}),  # this app's plugin commands
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
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Print forge-core's version and exit."),
        ] = False,
        verbose: Annotated[
            int,
            typer.Option(
                "--verbose", "-v", count=True, help="Log more, for any command (-v info, -vv debug) on stderr."
            ),
        ] = 0,
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
    lazy.update(plugin_commands(app, plugins))
    return app


#: Where plugin command groups are listed in ``forge --help``, apart from Forge's own commands.
PLUGIN_PANEL = "Plugin commands"
CORE_COMMANDS = frozenset({"new", "validate", "run", "plugins", "schemas", "db", "drill", "asyncapi"})


def plugin_commands(app: typer.Typer, plugins: Plugins) -> dict[str, LazyCommand]:
    """The commands plugins registered, each plugin's under its own name: ``forge <plugin>
    <command>``, as lazy groups. Top-level names belong to Forge, so no installed plugin (an example
    plant included) can add a bare ``forge monitor`` or take a name from another; ``forge --help``
    lists one group per plugin with commands, in its own panel, without importing any of them. A
    plugin that registers one Typer app named after itself has that app as its group (``forge acme
    ...``, not ``forge acme acme ...``).
    """
    taken = (
        {info.name for info in app.registered_commands if info.name}
        | {group.name for group in app.registered_groups if group.name}
        | set(CORE_COMMANDS)
    )
    by_plugin: dict[str, list[Any]] = {}
    for entry in plugins.collect_commands():
        by_plugin.setdefault(entry.plugin or "forge", []).append(entry)
    lazy: dict[str, LazyCommand] = {}
    for plugin, entries in by_plugin.items():
        name = plugin.removeprefix("local:")
        if name in taken:
            raise PluginError(
                f"its CLI commands would be `forge {name} ...`, but forge already has a command "
                f"{name!r}; rename the plugin's entry point",
                plugin=plugin,
                hook="forge_register_commands",
            )
        info = plugins.infos.get(plugin)
        origin = f" ({info.distribution} {info.version})" if info is not None and info.distribution else ""
        group_help = f"Commands of plugin {plugin}{origin}."
        if len(entries) == 1 and entries[0].name == name and entries[0].description:
            group_help = entries[0].description
        lazy[name] = LazyCommand(name, functools.partial(_plugin_group, name, entries, group_help), help=group_help,
                                 panel=PLUGIN_PANEL)
        taken.add(name)
    return lazy


def _plugin_group(name: str, entries: list[Any], group_help: str) -> Any:
    """Import a plugin's commands (the entries' values) and build its group as typer would have."""
    holder = typer.Typer()
    if len(entries) == 1 and entries[0].name == name and isinstance(entries[0].value, typer.Typer):
        holder.add_typer(entries[0].value, name=name, help=group_help)
    else:
        group = typer.Typer(help=group_help, no_args_is_help=True)
        for entry in entries:
            _add_command(group, entry)
        holder.add_typer(group, name=name)
    return typer.main.get_group(holder).commands[name]


def _add_command(group: typer.Typer, entry: Any) -> None:
    command = entry.value  # imported here, when the plugin's group is used
    if isinstance(command, typer.Typer):
        group.add_typer(command, name=entry.name, help=entry.description or None)
    elif callable(command):
        help_text = entry.description or inspect.getdoc(command) or None
        group.command(name=entry.name, help=help_text)(command)
    else:
        raise PluginError(
            f"CLI command {entry.name!r} must be a typer.Typer app or a function, got {type(command).__name__}",
            plugin=entry.plugin,
            hook="forge_register_commands",
        )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``forge``)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # answered before the plugins load: they import their libraries (docs/performance.md)
        typer.echo(version_lines())
        sys.exit(0)
    try:
        app = build_app()
    except ForgeError as exc:  # a broken plugin: nothing can run until it is fixed or disabled
        if debug_enabled():
            raise
        error(str(exc))
        sys.exit(1)
    app(args=argv, prog_name="forge")
