"""The dashboard's ASGI app (Starlette): the page, its static files, JSON views, SSE, actions.

Routes, under the dashboard's path: ``/`` the page; ``/static/*``; ``/api/state`` one snapshot;
``/api/events`` the SSE stream; ``/api/dead-letters?q=&reason=`` search the kept letters;
``/api/tail?topic=&q=&limit=`` the live tail; ``POST /api/actions/...`` (kill, revive, failover,
clear-dead-letters) only with ``actions: true`` and ``Authorization: Bearer <token>``, the token
read from the environment variable ``token_env`` at start (no token set: every action refused)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forge_core.dashboard.snapshot import letter_row

if TYPE_CHECKING:
    from forge_core.dashboard.service import Dashboard

STATIC = Path(__file__).parent / "static"


def build_app(dashboard: Dashboard) -> Starlette:
    runtime, settings = dashboard.runtime, dashboard.settings

    async def page(request: Request) -> Response:
        if not request.url.path.endswith("/"):  # relative asset URLs need the trailing slash
            return RedirectResponse(str(request.url.replace(path=request.url.path + "/")), status_code=308)
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def state(request: Request) -> Response:
        return Response(dashboard.broadcaster.frame().split(b"data: ", 1)[1].strip(), media_type="application/json")

    async def events(request: Request) -> Response:
        topic, needle = request.query_params.get("topic") or None, request.query_params.get("q", "")

        def page_tail() -> bytes:  # this page's live tail, filtered as it asked, after each state frame
            rows = dashboard.tail.messages(topic=topic, contains=needle, limit=50)
            return b"event: tail\ndata: " + orjson.dumps(rows, default=str) + b"\n\n"

        return StreamingResponse(dashboard.broadcaster.stream(page_tail), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def dead_letters(request: Request) -> Response:
        needle = request.query_params.get("q", "").lower()
        reason = request.query_params.get("reason")
        rows = []
        for letter in reversed(runtime.dead_letters.recent):
            if reason and letter.reason != reason:
                continue
            row = letter_row(letter)
            if needle and needle not in str(row).lower():
                continue
            rows.append(row)
            if len(rows) >= 200:
                break
        return JSONResponse({"letters": rows, "kept": len(runtime.dead_letters.recent)})

    async def tail(request: Request) -> Response:
        try:
            limit = max(1, min(int(request.query_params.get("limit", "100")), 1000))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        return JSONResponse({"messages": dashboard.tail.messages(
            topic=request.query_params.get("topic") or None, contains=request.query_params.get("q", ""), limit=limit)})

    async def action(request: Request) -> Response:
        refused = _refusal(request, settings.actions, dashboard.token, settings.token_env)
        if refused is not None:
            return refused
        verb, target = request.path_params["verb"], request.path_params.get("target", "")
        try:
            result = await dashboard.act(verb, target)
        except (KeyError, ValueError, LookupError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except Exception as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=409)
        return JSONResponse({"ok": True, **result})

    async def info(request: Request) -> Response:
        return JSONResponse({"actions": settings.actions, "interval": settings.interval})

    return Starlette(routes=[
        Route("/", page),
        Route("/api/info", info),
        Route("/api/state", state),
        Route("/api/events", events),
        Route("/api/dead-letters", dead_letters),
        Route("/api/tail", tail),
        Route("/api/actions/{verb}", action, methods=["POST"]),
        Route("/api/actions/{verb}/{target}", action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def _refusal(request: Request, enabled: bool, token: str | None, token_env: str) -> Response | None:
    if not enabled:
        return JSONResponse({"error": "the dashboard is read-only (settings.dashboard.actions: false)"},
                            status_code=403)
    if not token:
        return JSONResponse({"error": f"actions need a token: set {token_env} in the plant's environment"},
                            status_code=403)
    given = request.headers.get("authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
        return JSONResponse({"error": "missing or wrong token (Authorization: Bearer <token>)"}, status_code=401,
                            headers={"www-authenticate": "Bearer"})
    return None
