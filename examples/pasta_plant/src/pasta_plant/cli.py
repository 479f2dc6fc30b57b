"""``forge monitor PATH``: tail a plant's messages, colour-coded by topic.

It connects the plant's transports (no components, real clock), subscribes ``#`` and prints
each message: time, topic, type, source, body. On a network transport (MQTT, Kafka) it watches
a plant running elsewhere; the embedded profile's in-memory bus lives inside one process, so
there ``--with-plant`` runs the plant's components in this process too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from forge_core.cli import duration_option

PALETTE = ("cyan", "green", "yellow", "magenta", "blue", "bright_red", "bright_cyan", "bright_green",
           "bright_magenta", "bright_yellow")
FIXED = {"heartbeats": "bright_black", "experiment": "bold red", "storage/alert": "bold yellow"}


def colour_of(topic: str) -> str:
    """A stable colour per topic family (first level), fixed ones for the loud topics."""
    if topic in FIXED:
        return FIXED[topic]
    if topic.startswith("forge/deadletter"):
        return "bold white on red"
    return PALETTE[zlib.crc32(topic.split("/")[0].encode()) % len(PALETTE)]


def format_message(topic: str, message: Any) -> str:
    from forge_core import Envelope

    colour = colour_of(topic)
    if isinstance(message, Envelope):
        when = datetime.fromtimestamp(message.time, UTC).strftime("%H:%M:%S.%f")[:-3]
        body = orjson.dumps(message.payload).decode()
        head = f"{when} [{colour}]{escape(topic)}[/] {escape(message.type)} [dim]{escape(message.source)}[/]"
    else:  # undecoded bytes from a network transport
        body = bytes(getattr(message, "body", b"")).decode("utf-8", "replace")
        head = f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} [{colour}]{escape(topic)}[/] [dim]raw[/]"
    return f"{head} {escape(body)}"


def monitor(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Plant directory or its plant.yaml.")],
    topics: Annotated[list[str] | None, typer.Option(
        "--topics", "-t", metavar="PATTERN[,PATTERN]", help="Only these topics (MQTT wildcards; default #).")] = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", "-d", parser=duration_option, metavar="DURATION", help="Stop after this long: 30s, 5m.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="PROFILE",
                                                   help="Apply this manifest profile.")] = None,
    with_plant: Annotated[bool, typer.Option(
        "--with-plant", help="Run the plant's components here too (needed for the in-memory bus).")] = False,
) -> None:
    """Tail a plant's messages, colour-coded by topic, until Ctrl-C or --duration."""
    from forge_core import RealClock
    from forge_core.cli import run_until_signalled
    from forge_core.plugin import get_plugin_manager
    from forge_core.runtime import Runtime, load_plant
    from forge_core.transport import matches

    patterns = [p.strip() for item in (topics or ["#"]) for p in item.split(",") if p.strip()]
    plugins, manifest = load_plant(path, profile=profile, plugins=get_plugin_manager())
    if not with_plant:
        manifest = dataclasses.replace(manifest, components={},
                                       storage=dataclasses.replace(manifest.storage, migrate_on_start=False))
    out = Console(highlight=False)
    seen = [0]

    async def tap(topic: str, message: Any) -> None:
        if any(matches(p, topic) for p in patterns):
            seen[0] += 1
            out.print(format_message(topic, message), soft_wrap=True)

    runtime = Runtime(manifest, plugins, clock=RealClock(), tap=tap, serve_health=False)
    where = ", ".join(f"{name} ({spec.type})" for name, spec in manifest.transports.items())
    Console(stderr=True).print(f"[bold]monitoring[/] {escape(manifest.name)} on {escape(where)}: "
                               f"{escape(', '.join(patterns))}" + (" (with the plant)" if with_plant else ""))
    asyncio.run(run_until_signalled(runtime, duration))
    Console(stderr=True).print(f"{seen[0]} message(s)")
