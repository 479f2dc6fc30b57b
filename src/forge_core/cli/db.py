"""``forge db``: the plant database's migrations (core and every plugin's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from forge_core.cli.output import PLANT_PATH_HELP, console, print_json

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from forge_core.cli.main import CliState
    from forge_core.manifest import Manifest
    from forge_core.storage import MigrationRegistry

PlantPath = Annotated[Path, typer.Argument(metavar="PATH", help=PLANT_PATH_HELP)]
ProfileOption = Annotated[str | None, typer.Option("--profile", "-p", metavar="PROFILE",
                                                   help="Use this profile's storage URL.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _load(state: CliState, path: Path, profile: str | None) -> tuple[Manifest, MigrationRegistry]:
    from forge_core.cli.validate import require_manifest
    from forge_core.plant import load_plant
    from forge_core.storage import MigrationRegistry

    plugins, manifest = load_plant(require_manifest(path), profile=profile, plugins=state.fresh())
    return manifest, plugins.collect_migrations(MigrationRegistry(include_core=False))


@contextmanager
def _engine(manifest: Manifest) -> Iterator[Engine]:
    """The plant's engine as ``forge run`` makes it (``storage.pool_size``, ``prepared_statements``:
    a one-session server refuses a second connection), disposed of afterwards."""
    from forge_core.storage import create_engine_from_url

    engine = create_engine_from_url(manifest.storage.url, plant_dir=manifest.plant_dir,
                                    **manifest.storage.engine_kwargs())
    try:
        yield engine
    finally:
        engine.dispose()


def register(app: typer.Typer, state: CliState) -> None:
    group = typer.Typer(help="Database migrations of the plant's storage.", no_args_is_help=True)
    app.add_typer(group, name="db")

    @group.command()
    def upgrade(path: PlantPath, profile: ProfileOption = None, json_out: JsonOption = False) -> None:
        """Apply every pending migration of forge-core and each installed plugin."""
        from forge_core.storage import mask_url
        from forge_core.storage import upgrade as do_upgrade

        manifest, registry = _load(state, path, profile)
        with _engine(manifest) as engine:
            heads = do_upgrade(engine, registry)
        url = mask_url(manifest.storage.url)
        if json_out:
            print_json({"url": url, "heads": heads, "migrations": [e.name for e in registry]})
            return
        console().print(f"[bold green]upgraded[/] {escape(url)}: "
                        f"{escape(', '.join(e.name for e in registry))} at {escape(', '.join(heads) or 'base')}")

    @group.command()
    def current(path: PlantPath, profile: ProfileOption = None, json_out: JsonOption = False) -> None:
        """Show the applied revision of each migration branch (none: not applied yet)."""
        from forge_core.storage import current as do_current
        from forge_core.storage import mask_url

        manifest, registry = _load(state, path, profile)
        with _engine(manifest) as engine:
            applied = do_current(engine, registry)
        url = mask_url(manifest.storage.url)
        if json_out:
            print_json({"url": url, "current": applied})
            return
        out = console()
        out.print(f"[bold]{escape(url)}[/]")
        for name, head in applied.items():
            shown = f"[green]{escape(head)}[/]" if head else "[yellow]not applied[/] (run `forge db upgrade`)"
            out.print(f"  {escape(name)}: {shown}")
