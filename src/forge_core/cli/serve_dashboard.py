"""``forge run --dashboard``: which dashboard a run serves, and serving it beside the run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from forge_core.dashboard import DASHBOARD_ENV, Dashboard, DashboardSettings, parse_address

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from rich.console import Console

    from forge_core.manifest import Manifest
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary
    from forge_core.serving.http import ASGIApp

log = logging.getLogger("forge.dashboard")
OFF = ("off", "no", "false", "none")


def resolve(manifest: Manifest, option: str | None, *, simulate: bool) -> tuple[DashboardSettings, bool] | None:
    """The settings of the run's dashboard and whether it was asked for explicitly, or None for
    no dashboard: ``--dashboard`` (or ``$FORGE_DASHBOARD``) over ``settings.dashboard``; never
    under --simulate (virtual time serves no sockets)."""
    settings = DashboardSettings.load(manifest.settings.get("dashboard"), where="settings.dashboard")
    if option is not None and option.strip().lower() in OFF:
        return None
    if option is not None:
        try:
            host, port = parse_address(option.strip())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--dashboard") from None
        settings = settings.model_copy(update={"enabled": True, "port": port, "host": host or settings.host})
    if simulate or not settings.on(manifest.profile):
        return None
    return settings, option is not None or settings.enabled is True


@contextlib.contextmanager
def children_serve_their_own(chosen: tuple[DashboardSettings, bool] | None) -> Iterator[None]:
    """While the multi-process runner copies the environment for its children: ``FORGE_DASHBOARD=HOST:0``,
    so each child serves its own dashboard on a free port, which the parent's page links."""
    if chosen is None:
        yield
        return
    before = os.environ.get(DASHBOARD_ENV)
    os.environ[DASHBOARD_ENV] = f"{chosen[0].host}:0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DASHBOARD_ENV, None)
        else:
            os.environ[DASHBOARD_ENV] = before


async def run_with_dashboard(run: Callable[[Callable[[Any], None]], Awaitable[RunSummary]],
                             on_started: Callable[[Any], None], chosen: tuple[DashboardSettings, bool],
                             out: Console, *, children_dir: Path | None = None) -> RunSummary:
    """``run(on_started)`` (a run until signalled) with the dashboard started once the plant is up
    (a task beside the run) and closed after it."""
    settings, explicit = chosen
    dashboard: Dashboard | None = None
    starting: asyncio.Task[None] | None = None
    stop_target: Any = None

    async def serve(runtime: Runtime) -> None:
        nonlocal dashboard
        dashboard = Dashboard(runtime, settings, children_dir=children_dir)
        try:
            url = await dashboard.start()
        except Exception as exc:
            if explicit:
                out.print(f"[red]dashboard not served[/]: {type(exc).__name__}: {exc}")
                stop_target.request_stop("dashboard failed to start")
            else:  # the embedded profile's default must not stop a plant that runs fine
                log.warning("dashboard not served: %s: %s", type(exc).__name__, exc)
            return
        out.print(f"  dashboard on {url}" + (" (actions on)" if settings.actions else ""))
        await serve_asyncapi(dashboard, runtime)

    def started(started_target: Any) -> None:
        nonlocal starting, stop_target
        stop_target = started_target
        on_started(started_target)
        runtime = getattr(started_target, "runtime", None) or started_target
        starting = asyncio.ensure_future(serve(runtime))

    try:
        return await run(started)
    finally:
        if starting is not None:
            await asyncio.gather(starting, return_exceptions=True)
        if dashboard is not None:
            await dashboard.aclose()


async def serve_asyncapi(dashboard: Dashboard, runtime: Runtime) -> None:
    """The plant's AsyncAPI page (forge asyncapi --serve's app) at /asyncapi beside the dashboard,
    linked from its header. Built once, in a thread (it loads the plant again); a plant whose
    document cannot be built still has its dashboard."""
    from forge_core.asyncapi import asgi_app, build_document

    manifest = runtime.manifest
    try:
        document = await asyncio.to_thread(build_document, manifest.path, profile=manifest.profile)
        assert dashboard.host is not None and dashboard.host.url is not None
        app = cast("ASGIApp", asgi_app(document))  # its own dict-typed ASGI signature; the same protocol
        await dashboard.host.mount("/asyncapi", app, owner="forge.asyncapi")
    except Exception as exc:
        log.warning("dashboard: no AsyncAPI page for %s: %s: %s", manifest.name, type(exc).__name__, exc)
        return
    dashboard.collector.links["AsyncAPI"] = f"{dashboard.host.url}/asyncapi/"

