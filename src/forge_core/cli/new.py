"""``forge new plant|plugin`` and ``forge check-plugin``: scaffolds that run, validate and pass their
own tests as generated, and the layout checker every plugin (scaffolded or not) is held to.

Templates live in ``templates/plant/`` and ``templates/plugin-<kind>/`` (component, transport,
tactic), each a complete tree; ``{{key}}`` in file names and contents is replaced,
a ``.tmpl`` suffix is dropped and a ``dot-`` prefix becomes ``.`` (so packaging tools never
mistake a template for real code or config).
"""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from forge_core import __version__
from forge_core.cli.layout import check_plugin
from forge_core.cli.output import console
from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.cli.main import CliState

TEMPLATES = Path(__file__).parent / "templates"
PLANT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class PluginKind(enum.StrEnum):
    """What ``forge new plugin --kind`` scaffolds (templates/plugin-<kind>/)."""

    component = "component"
    transport = "transport"
    tactic = "tactic"


_TOKEN = re.compile(r"\{\{(\w+)\}\}")
# Python keywords and names a generated module would shadow.
_RESERVED = {"forge", "forge_core", "test", "tests", "plugins", "components", "schemas", "and", "or", "not", "if",
             "for", "class", "def", "import", "from", "in", "is", "none", "true", "false", "async", "await"}


def render(text: str, values: dict[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ForgeError(f"template {where} uses unknown placeholder {{{{{key}}}}}")
        return values[key]

    return _TOKEN.sub(sub, text)


def scaffold(kind: str, target: Path, values: dict[str, str]) -> list[Path]:
    """Write the ``kind`` template tree into ``target`` (which must not exist); return the files."""
    if target.exists():
        raise ForgeError(f"{target} already exists; choose another name or --dir, or remove it first "
                         "(forge new never overwrites)")
    source = TEMPLATES / kind
    if not source.is_dir():
        raise ForgeError(f"forge-core is missing its {kind!r} templates at {source}; reinstall forge-core")
    written = []
    files = sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    rendered = []
    for template in files:
        rel = template.relative_to(source)
        parts = [render(part, values, str(template)) for part in rel.parts]
        name = parts[-1].removesuffix(".tmpl")
        parts[-1] = "." + name.removeprefix("dot-") if name.startswith("dot-") else name
        rendered.append((target.joinpath(*parts), render(template.read_text(encoding="utf-8"), values,
                                                         str(template))))
    for path, text in rendered:  # render everything first: a template error leaves nothing behind
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_-]", name) if part)


def check_plant_name(name: str) -> None:
    if not PLANT_NAME.match(name):
        bad = "it is empty" if not name else (
            f"it starts with {name[0]!r}" if not name[0].isalpha() or not name[0].islower() else
            "it has " + ", ".join(repr(c) for c in sorted({c for c in name if not re.match(r"[a-z0-9_]", c)})))
        raise typer.BadParameter(f"{name!r} is not a plant name: {bad}; use a lower case letter, then lower case "
                                 "letters, digits or '_' (e.g. bakery, pasta_line2)", param_hint="NAME")
    if name in _RESERVED:
        raise typer.BadParameter(f"{name!r} is reserved (it would shadow a module); pick another plant name",
                                 param_hint="NAME")


def plugin_values(name: str) -> dict[str, str]:
    """forge-acme → distribution forge-acme, package forge_acme, plugin/prefix acme."""
    if not PLUGIN_NAME.match(name):
        raise typer.BadParameter(f"{name!r} is not a plugin distribution name: use lower case letters and digits, "
                                 "words separated by single '-', starting with a letter (e.g. forge-acme)",
                                 param_hint="NAME")
    short = name.removeprefix("forge-").replace("-", "_")
    package = name.replace("-", "_")
    if name in ("forge", "forge-core") or package in _RESERVED or short in _RESERVED:
        raise typer.BadParameter(f"{name!r} would clash with Forge's own names; pick e.g. forge-acme",
                                 param_hint="NAME")
    return {"dist": name, "package": package, "short": short, "class_name": camel(short),
            "core_version": __version__}


def register(app: typer.Typer, state: CliState) -> None:
    group = typer.Typer(help="Scaffold a plant or a plugin package.", no_args_is_help=True)
    app.add_typer(group, name="new")

    @group.command("plant")
    def new_plant(
        name: Annotated[str, typer.Argument(
            metavar="NAME", help="Plant name: lower case letter, then letters, digits, '_'.")],
        directory: Annotated[Path, typer.Option(
            "--dir", metavar="DIR", help="Create the plant inside this directory.")] = Path("."),
    ) -> None:
        """Create NAME/: plant.yaml, a machine component, its message schemas, tests and a README.

        The result validates, runs (`forge run NAME`) and passes its own tests as generated.
        """
        check_plant_name(name)
        target = directory / name
        files = scaffold("plant", target, {"name": name, "class_name": camel(name)})
        _report(target, files, [f"forge validate {target}", f"forge run {target}",
                                f"forge run {target} --simulate 24h --seed 7 --profile quiet",
                                f"python -m pytest {target / 'tests'}"])

    @group.command("plugin")
    def new_plugin(
        name: Annotated[str, typer.Argument(
            metavar="NAME", help="Distribution name, e.g. forge-acme (package forge_acme, plugin acme).")],
        kind: Annotated[PluginKind, typer.Option(
            "--kind", help="component: a component, its Params and a schema; transport: a transport/ package "
                           "on an in-process broker, passing the conformance suite; tactic: a tactic kind "
                           "and an implementation.")] = PluginKind.component,
        directory: Annotated[Path, typer.Option(
            "--dir", metavar="DIR", help="Create the package inside this directory.")] = Path("."),
    ) -> None:
        """Create a plugin package NAME/ in Forge's plugin layout: pyproject.toml with its `forge` entry
        point, plugin.py, settings.py, components/ or transport/, schemas/, tests/ and a docs page.

        The result passes its own tests and `forge check-plugin` as generated."""
        values = plugin_values(name)
        target = directory / name
        files = scaffold(f"plugin-{kind.value}", target, values)
        _report(target, files, [f"pip install -e {target}", "forge plugins", f"forge check-plugin {target}",
                                f"python -m pytest {target}"])

    @app.command("check-plugin")
    def check_plugin_command(
        paths: Annotated[list[Path], typer.Argument(
            metavar="PATH...", help="Plugin distribution directories (holding pyproject.toml).")],
        as_json: Annotated[bool, typer.Option("--json", help="Problems as a JSON list.")] = False,
    ) -> None:
        """Check plugin directories against Forge's plugin layout; every problem at once.

        Exit code 1 when any plugin deviates (each problem names the plugin, the file and what is
        expected); see docs/architecture.md for the layout."""
        results = [(path, check_plugin(path)) for path in paths]
        problems = [p for _, found in results for p in found]
        if as_json:
            typer.echo(json.dumps([{"plugin": p.plugin, "file": p.file, "message": p.message} for p in problems],
                                  indent=2))
        else:
            out = console()
            for path, found in results:
                if not found:
                    out.print(f"[bold green]ok[/] {escape(str(path))}")
                for problem in found:
                    out.print(f"[bold red]error[/] {escape(str(problem))}")
        if problems:
            raise typer.Exit(1)


def _report(target: Path, files: list[Path], steps: list[str]) -> None:
    out = console()
    out.print(f"[bold green]created[/] {escape(str(target))}/ ({len(files)} files)")
    for path in files:
        out.print(f"  {escape(str(path.relative_to(target)))}")
    out.print("next:")
    for step in steps:
        out.print(f"  [bold]{escape(step)}[/]")
