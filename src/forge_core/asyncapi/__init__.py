"""AsyncAPI 3.0 documents of plants (issue 16): ``build_document`` from a plant's manifest and its
components' declared flows, ``document_errors`` against the bundled official schema,
``render_html``/``asgi_app`` for a readable page served without a CDN. See docs/asyncapi.md."""

from forge_core.asyncapi.build import VERSION, build_document
from forge_core.asyncapi.render import asgi_app, dump, render_html
from forge_core.asyncapi.validate import document_errors, official_schema

__all__ = ["VERSION", "asgi_app", "build_document", "document_errors", "dump", "official_schema", "render_html"]
