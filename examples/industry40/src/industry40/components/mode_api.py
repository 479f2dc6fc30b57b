"""``industry40.mode_api``: an operator sets a simulated factory's failure mode over HTTP.

``POST <path>/factories/<id>/mode`` (``/simulator`` by default) with ``{"mode": "stop" | "degraded" |
"flapping" | "recover", "reason": "..."}`` publishes ``industry40.factory_mode`` on ``factory/<id>/mode``:
the message a plain MQTT client publishes on the distributed profile and chaos publishes, so the
factory's one handler (``Factory.on_mode``) applies all three. On the embedded profile (the memory
bus, one process) this route is how a command reaches the plant from outside.

Answers: ``202`` ``{"factoryId", "mode", "topic", "messageId"}`` once the message is published (the
factory applies it as it arrives); ``404`` for an id that is not one of the plant's simulated
factories (a plain client beating on ``factory/9/heartbeat`` is no simulator to command); ``400``
for a body that is not JSON; ``422`` naming the field the message's schema refuses.

Mounted on the runtime's one HTTP server (``ctx.http``) under its own prefix: the PMS's REST API
sits at the root with ``GET /factories``, and a longer prefix wins.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forge_core import Component, Publishes
from industry40.components.factory import MODE, simulated_factories
from industry40.settings import ModeApiParams


class ModeApi(Component):
    """``POST /simulator/factories/{factory_id}/mode`` -> ``industry40.factory_mode`` on the bus."""

    Params: ClassVar[type[ModeApiParams]] = ModeApiParams
    params: ModeApiParams
    publishes = (Publishes(MODE, topic="factory/{factory_id}/mode", key="factoryId"),)

    async def start(self) -> None:
        _, ids = simulated_factories(self.ctx.services.get("runtime"), self.params.factories)
        self.factory_ids = ids
        self.stats = {"accepted": 0, "unknown_factory": 0, "rejected": 0}
        if not ids:
            self.ctx.log.warning(
                "no simulated factories in component %r: every mode command will be 404", self.params.factories
            )
        prefix = self.params.path.rstrip("/")
        app = Starlette(routes=[Route("/factories/{factory_id}/mode", self.post_mode, methods=["POST"])])
        await self.ctx.http.mount(prefix or "/", app)  # removed by the runtime when this component stops
        self.ctx.log.info("factory modes on %s%s/factories/{id}/mode", self.ctx.http.url or "(in-process)", prefix)

    async def post_mode(self, request: Request) -> Response:
        factory_id = request.path_params["factory_id"]
        if factory_id not in self.factory_ids:
            self.stats["unknown_factory"] += 1
            return JSONResponse(
                {
                    "error": f"no simulated factory {factory_id!r}; this plant runs "
                    f"{', '.join(self.factory_ids) or 'none'}",
                    "factories": self.factory_ids,
                },
                404,
            )
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return self._refuse(400, f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return self._refuse(
                422, f'the body must be a JSON object like {{"mode": "stop"}}, got {type(body).__name__}'
            )
        if body.get("factoryId", factory_id) != factory_id:
            return self._refuse(
                422, f"factoryId {body['factoryId']!r} differs from the path's {factory_id!r}", "factoryId"
            )
        payload = {**body, "factoryId": factory_id}
        # checked here, not left to publish: a refused publish is a dead letter, a bad request is the caller's 422
        errors = self.ctx.bus.schemas.errors(MODE, payload)
        if errors:
            fields = [{"field": _field(e["pointer"]), "message": e["message"]} for e in errors]
            first = fields[0]
            return self._refuse(422, f"{first['field'] or 'body'}: {first['message']}", first["field"], fields)
        topic = f"factory/{factory_id}/mode"
        envelope = await self.ctx.publish(topic, MODE, payload, key=factory_id)
        self.stats["accepted"] += 1
        self.ctx.log.info(
            "%s: mode %s by HTTP%s",
            factory_id,
            payload["mode"],
            f" ({payload['reason']})" if payload.get("reason") else "",
        )
        return JSONResponse(
            {"factoryId": factory_id, "mode": payload["mode"], "topic": topic, "messageId": envelope.id}, 202
        )

    def _refuse(
        self, status: int, message: str, field: str | None = None, errors: list[dict[str, Any]] | None = None
    ) -> Response:
        """The PMS's error body (``error``, ``field``, ``errors``), so a client reads both APIs alike."""
        self.stats["rejected"] += 1
        if errors is None:
            errors = [{"field": field, "message": message}] if field else []
        return JSONResponse({"error": message, "field": field, "errors": errors}, status)

    def health(self) -> dict[str, Any]:
        return {
            "path": self.params.path,
            "factories": len(getattr(self, "factory_ids", ())),
            **getattr(self, "stats", {}),
        }

    def report(self) -> dict[str, Any]:
        return dict(self.stats)


def _field(pointer: str) -> str | None:
    """A JSON pointer (``/mode``) as the dotted field name (``mode``); None for the body itself."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/") if p]
    return ".".join(parts) or None
