"""``forge validate``: every problem of a plant's manifest at once, each with file and line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from forge_core.cli.output import (
    PLANT_PATH_HELP,
    component_count,
    console,
    print_json,
    print_problems,
    problem_dict,
)
from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.cli.main import CliState

PlantPath = Annotated[Path, typer.Argument(metavar="PATH", help=PLANT_PATH_HELP)]


def require_manifest(path: Path) -> Path:
    """The manifest file at ``path``, or an error saying what is missing where."""
    from forge_core.plant import manifest_file

    file = manifest_file(path)
    if not file.is_file():
        where = f"{path} has no plant.yaml" if path.is_dir() else f"{path} does not exist"
        raise ForgeError(f"no plant manifest: {where}; create one with `forge new plant NAME`")
    return file


def register(app: typer.Typer, state: CliState) -> None:
    @app.command()
    def validate(
        path: PlantPath,
        json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    ) -> None:
        """Check a plant manifest, its profiles and its plugins' own rules; list every problem.

        Each problem is printed as `file:line at path: message`. Exit code 1 when there is any.
        """
        file = require_manifest(path)
        from forge_core.plant import check_plant, load_plant  # the loader: yaml, jsonschema, pydantic

        problems = check_plant(file, plugins=state.fresh())
        if problems:
            if json_out:
                print_json({"ok": False, "manifest": str(file), "problems": [problem_dict(p) for p in problems]})
            else:
                print_problems(problems)
            raise typer.Exit(1)
        _, manifest = load_plant(file, plugins=state.fresh())
        info: dict[str, Any] = {
            "ok": True,
            "manifest": str(file),
            "plant": manifest.name,
            "components": {name: spec.type for name, spec in manifest.components.items()},
            # what `forge run` lists: a component with replicas: 3 is three instances (machine-0..2)
            "instances": sum(spec.replicas for spec in manifest.components.values()),
            "transports": {name: spec.type for name, spec in manifest.transports.items()},
            "profiles": manifest.profiles,
            "problems": [],
        }
        if json_out:
            print_json(info)
            return
        out = console()
        out.print(f"[bold green]ok[/] {escape(str(file))}: plant [bold]{escape(manifest.name)}[/]")
        comps = ", ".join(f"{n}{f' x{manifest.components[n].replicas}' if manifest.components[n].replicas > 1 else ''}"
                          f" ({t})" for n, t in info["components"].items()) or "none"
        trans = ", ".join(f"{n} ({t})" for n, t in info["transports"].items()) or "none"
        out.print(f"  {component_count(len(manifest.components), info['instances'])}: {escape(comps)}")
        out.print(f"  {len(manifest.transports)} transports: {escape(trans)}")
        out.print(f"  profiles: {escape(', '.join(manifest.profiles) or 'none')}")
