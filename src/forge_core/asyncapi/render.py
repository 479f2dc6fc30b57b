"""A readable page of an AsyncAPI document, rendered on the server: no script, no CDN, no fonts
from elsewhere (plants run on networks without the internet). ``render_html`` gives the page;
``asgi_app`` serves it with the document as JSON and YAML, for ``forge asyncapi --serve`` or a
dashboard that mounts it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;color:#1b1f23}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}
h3{margin:1.4rem 0 .3rem;font-family:ui-monospace,monospace}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;
vertical-align:top}th{background:#f6f8fa}code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;max-height:30rem}
.send{color:#0a6b2d;font-weight:600}.receive{color:#0550ae;font-weight:600}.muted{color:#57606a}
nav a{margin-right:1rem}details{margin:.3rem 0}
"""

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def _code(text: object) -> str:
    return f"<code>{escape(str(text))}</code>"


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-{escape(name, quote=True)}"


def _ref_name(ref: dict[str, Any] | None) -> str:
    return str((ref or {}).get("$ref", "")).rsplit("/", 1)[-1]


def _schema_block(title: str, schema: Any) -> str:
    body = escape(json.dumps(schema, indent=2, ensure_ascii=False))
    return f"<details><summary>{escape(title)}</summary><pre>{body}</pre></details>"


def render_html(document: dict[str, Any]) -> str:
    """The whole page of ``document`` as one HTML string."""
    info = document.get("info", {})
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(str(info.get('title')))} — "
             f"AsyncAPI</title><style>{_CSS}</style></head><body>",
             f"<h1>{escape(str(info.get('title', '')))}</h1>",
             f"<p class=muted>AsyncAPI {escape(str(document.get('asyncapi')))} · version "
             f"{escape(str(info.get('version', '')))} · profile {escape(str(document.get('x-forge-profile')))} · "
             f"<a href='asyncapi.json'>JSON</a> · <a href='asyncapi.yaml'>YAML</a></p>",
             "".join(f"<p>{escape(p)}</p>" for p in str(info.get("description", "")).split("\n\n")),
             "<nav><a href='#servers'>Servers</a><a href='#operations'>Operations</a>"
             "<a href='#channels'>Channels</a></nav>"]
    parts.append(_servers(document.get("servers") or {}))
    parts.append(_operations(document.get("operations") or {}))
    parts.append(_channels(document.get("channels") or {}))
    unplaced = document.get("x-forge-unplaced") or []
    if unplaced:
        rows = "".join(f"<li>{_code(u['component'])}: {', '.join(map(_code, u['types']))}</li>" for u in unplaced)
        parts.append(f"<h2>Published without a declared topic</h2><ul>{rows}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _servers(servers: dict[str, Any]) -> str:
    if not servers:
        return "<h2 id=servers>Servers</h2><p>None: every transport of this profile is in process.</p>"
    rows = "".join(
        f"<tr><td>{_code(name)}</td><td>{_code(s.get('protocol'))} {escape(str(s.get('protocolVersion', '')))}</td>"
        f"<td>{_code(s.get('host'))}</td><td>{escape(str(s.get('description', '')))}</td></tr>"
        for name, s in servers.items())
    return (f"<h2 id=servers>Servers</h2><table><tr><th>name</th><th>protocol</th><th>host</th><th>about</th></tr>"
            f"{rows}</table>")


def _operations(operations: dict[str, Any]) -> str:
    by_component: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for op_id, op in operations.items():
        by_component.setdefault(str(op.get("x-forge-component", "")), []).append((op_id, op))
    out = ["<h2 id=operations>Operations</h2>"]
    for component, ops in by_component.items():
        out.append(f"<h3>{escape(component)}</h3><table><tr><th>action</th><th>channel</th><th>messages</th>"
                   "<th>bindings</th></tr>")
        for _, op in ops:
            channel = _ref_name(op.get("channel"))
            messages = ", ".join(_code(_ref_name(m)) for m in op.get("messages", [])) or "<span class=muted>any" \
                                                                                          "</span>"
            bindings = escape(json.dumps(op.get("bindings", {}), ensure_ascii=False)) if op.get("bindings") else ""
            action = escape(str(op.get("action")))
            out.append(f"<tr><td class={action}>{action}</td><td><a href='#{_anchor('channel', channel)}'>"
                       f"{escape(channel)}</a></td><td>{messages}</td><td><code>{bindings}</code></td></tr>")
        out.append("</table>")
    return "".join(out)


def _channels(channels: dict[str, Any]) -> str:
    out = ["<h2 id=channels>Channels</h2>"]
    for channel_id, channel in channels.items():
        server = ", ".join(_ref_name(s) for s in channel.get("servers", [])) or "in process"
        out.append(f"<h3 id='{_anchor('channel', channel_id)}'>{escape(str(channel.get('address')))}</h3>"
                   f"<p class=muted>{escape(channel_id)} · transport {_code(channel.get('x-forge-transport'))} · "
                   f"server {escape(server)}</p>")
        params = channel.get("parameters") or {}
        if params:
            rows = "".join(f"<tr><td>{_code(n)}</td><td>{escape(str(p.get('description', '')))}</td></tr>"
                           for n, p in params.items())
            out.append(f"<table><tr><th>parameter</th><th>meaning</th></tr>{rows}</table>")
        for name, message in (channel.get("messages") or {}).items():
            out.append(f"<h4 id='{_anchor('message', channel_id + '-' + name)}'>{_code(message.get('name', name))} "
                       f"<span class=muted>{escape(str(message.get('title', '')))} · "
                       f"{escape(str(message.get('contentType', '')))}</span></h4>")
            if message.get("summary"):
                out.append(f"<p>{escape(str(message['summary']))}</p>")
            payload = message.get("payload") or {}
            out.append(_schema_block(f"payload ({payload.get('schemaFormat', 'schema')})", payload.get("schema", {})))
            if message.get("headers"):
                out.append(_schema_block("headers (CloudEvents attributes)", message["headers"]))
            if message.get("bindings"):
                out.append(_schema_block("bindings", message["bindings"]))
    return "".join(out)


def asgi_app(document: dict[str, Any] | Callable[[], dict[str, Any]]) -> App:
    """An ASGI app serving ``document`` (or what the callable returns, built per request):
    ``/`` the page, ``/asyncapi.json``, ``/asyncapi.yaml``; anything else 404."""

    def current() -> dict[str, Any]:
        return document() if callable(document) else document

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path = str(scope.get("path", "/")).rsplit("/", 1)[-1]
        if path in ("", "index.html"):
            body, kind, status = render_html(current()).encode(), "text/html; charset=utf-8", 200
        elif path == "asyncapi.json":
            body, kind, status = json.dumps(current(), indent=2).encode(), "application/json", 200
        elif path == "asyncapi.yaml":
            body, kind, status = dump(current(), "yaml").encode(), "application/yaml", 200
        else:
            body, kind, status = b"not found", "text/plain", 404
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def dump(document: dict[str, Any], fmt: str) -> str:
    """The document as ``yaml`` or ``json`` text."""
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml

    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120))
