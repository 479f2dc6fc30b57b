"""``forge asyncapi``: a plant's AsyncAPI 3.0 document (servers, channels, operations, messages),
written as YAML or JSON, checked against the official schema, or served as a readable page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from forge_core.cli.output import PLANT_PATH_HELP, console, error
from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.cli.main import CliState


def register(app: typer.Typer, state: CliState) -> None:
    @app.command()
    def asyncapi(
        path: Annotated[Path, typer.Argument(metavar="PLANT", help=PLANT_PATH_HELP)],
        profile: Annotated[str | None, typer.Option("--profile", "-p", help="The profile to document (default: "
                                                    "the manifest's default profile).")] = None,
        fmt: Annotated[Literal["yaml", "json"], typer.Option("--format", "-f", help="yaml or json.")] = "yaml",
        output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                    help="Write the document here instead of stdout.")] = None,
        check: Annotated[bool, typer.Option("--check", help="Validate against the official AsyncAPI 3.0.0 "
                                                            "JSON Schema; exit 1 on any error.")] = False,
        serve: Annotated[bool, typer.Option("--serve", help="Serve a readable page (and the document as "
                                                            "/asyncapi.json, /asyncapi.yaml); no CDN.")] = False,
        host: Annotated[str, typer.Option("--host", help="Address --serve listens on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port --serve listens on.")] = 8765,
    ) -> None:
        """Write the AsyncAPI 3.0 document of a plant: servers from its transports, channels from the
        topics its components declare (wildcard levels as parameters), send/receive operations per
        component, messages from the JSON Schemas with the CloudEvents attributes as headers."""
        from forge_core.asyncapi import asgi_app, build_document, document_errors, dump
        from forge_core.cli.validate import require_manifest

        file = require_manifest(path)
        document = build_document(file, profile=profile, plugins=state.fresh())
        if check:
            problems = document_errors(document)
            for problem in problems:
                error(f"{file} (profile {document.get('x-forge-profile')}): {problem}")
            if problems:
                raise typer.Exit(1)
        if serve:
            try:
                import uvicorn
            except ImportError:
                raise ForgeError("--serve needs uvicorn: pip install 'forge-core[http]'") from None
            console(stderr=True).print(f"AsyncAPI of {document['info']['title']} on http://{host}:{port}/")
            uvicorn.run(asgi_app(document), host=host, port=port, log_level="warning")
            return
        text = dump(document, fmt)
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            console(stderr=True).print(f"wrote {output} ({len(document['channels'])} channels, "
                                       f"{len(document['operations'])} operations)")
