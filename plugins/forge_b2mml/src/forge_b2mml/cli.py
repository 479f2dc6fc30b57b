"""``forge b2mml``: validate, convert and sample B2MML documents from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from forge_b2mml.mapping import to_dict, to_messages
from forge_b2mml.samples import sample as make_sample
from forge_b2mml.validate import load
from forge_b2mml.xml import B2mmlError

app = typer.Typer(name="b2mml", help="ISA-95 B2MML documents: validate, convert, samples.", no_args_is_help=True,
                  add_completion=False)

MAX_BYTES = 200 * 1024 * 1024  # the CLI reads local files a person chose; the components have their own limit


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="B2MML documents (V0600 or V0701).")],
    backend: Annotated[str, typer.Option(help="lxml or xmlschema.")] = "lxml",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Validate against MESA's XSDs; every error of every file; exit 1 when any file is invalid."""
    bad = 0
    for path in files:
        try:
            doc = load(path.read_bytes(), max_bytes=MAX_BYTES, backend=backend,  # type: ignore[arg-type]
                       source=str(path))
        except OSError as exc:
            bad += 1
            typer.echo(f"{path}: cannot read: {exc.strerror}", err=True)
            continue
        except B2mmlError as exc:
            bad += 1
            if as_json:
                typer.echo(json.dumps({"file": str(path), "valid": False, **exc.as_dict()}))
            else:
                typer.echo(f"{path}: INVALID: {exc.summary}")
                for p in exc.problems:
                    typer.echo(f"  {path}:{p.line or '?'}: {p.path}: {p.message}")
            continue
        if as_json:
            typer.echo(json.dumps({"file": str(path), "valid": True, "version": doc.version, "noun": doc.noun}))
        else:
            typer.echo(f"{path}: valid B2MML {doc.version} {doc.verb or ''}{doc.noun}")
    raise typer.Exit(1 if bad else 0)


@app.command()
def convert(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A B2MML document.")],
    to: Annotated[Literal["json", "messages"], typer.Option(
        "--to", help="json: the B2MML-JSON-like dict; messages: the plant messages it maps to.")] = "json",
) -> None:
    """Print a valid document as JSON (the dict the mapping sees) or as the plant messages it becomes."""
    try:
        doc = load(file.read_bytes(), max_bytes=MAX_BYTES, source=str(file))
    except B2mmlError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    out: object
    if to == "json":
        out = {"version": doc.version, "verb": doc.verb, "noun": doc.noun, doc.root.tag.split("}")[-1]: to_dict(
            doc.root)}
    else:
        out = [{"type": t, "payload": p} for t, p in to_messages(doc)]
    typer.echo(json.dumps(out, indent=2))


@app.command()
def sample(
    kind: Annotated[Literal["schedule", "performance"], typer.Argument(help="schedule or performance.")],
    version: Annotated[Literal["V0600", "V0701"], typer.Option("--version", help="B2MML release.")] = "V0600",
) -> None:
    """Print a valid sample document (ProductionSchedule/Performance for V0600, Operations* for V0701)."""
    sys.stdout.write(make_sample(kind, version).decode("utf-8"))
