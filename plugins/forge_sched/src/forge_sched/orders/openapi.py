"""The OpenAPI 3.1 document of the REST API, kept by hand next to the routes (a test checks that
every route is documented and nothing else, and validates the document with openapi-spec-validator).
The request body schema is the pydantic model's own, so validation and documentation cannot drift."""

from __future__ import annotations

from typing import Any

from forge_sched.orders.requests import OrderRequest
from forge_sched.orders.tables import FACTORY_STATUSES, ORDER_STATUSES

__all__ = ["document"]

_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ORDER = {
    "type": "object",
    "required": ["id", "product_type", "quantity", "deadline", "status", "factory_id", "progress", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "product_type": {"type": "string"},
        "quantity": {"type": "integer", "minimum": 1},
        "deadline": {"type": "string", "format": "date-time"},
        "status": {"enum": list(ORDER_STATUSES)},
        "factory_id": {"type": ["string", "null"], "description": "the factory holding it (null: pending/completed)"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "completed_at": _NULLABLE_TIME,
        "completed_by": {"type": ["string", "null"]},
        "assignments": {"type": "array", "description": "GET /orders/{order_id} only: every holder, oldest first",
                        "items": {"type": "object", "properties": {
                            "factory_id": {"type": "string"}, "assigned_at": {"type": "string", "format": "date-time"},
                            "epoch": {"type": ["integer", "null"]}, "revoked_at": _NULLABLE_TIME,
                            "revoke_reason": {"type": ["string", "null"]}}}},
    },
}

FACTORY = {
    "type": "object",
    "required": ["id", "status", "risk", "capacity", "load", "free"],
    "properties": {
        "id": {"type": "string"},
        "status": {"enum": list(FACTORY_STATUSES)},
        "reason": {"type": ["string", "null"]},
        "risk": {"enum": ["LOW", "MEDIUM", "HIGH", None], "description": "from mms.risk_changed, null if unknown"},
        "capacity": {"type": "integer", "minimum": 0},
        "load": {"type": "integer", "minimum": 0, "description": "orders held (assigned or in progress)"},
        "free": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": ["string", "null"], "description": "the input at fault"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}


def _json(schema: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}
    if headers:
        response["headers"] = headers
    return response


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document(server: str = "") -> dict[str, Any]:
    """The OpenAPI document; ``server`` is the mount path (the runtime's root_path)."""
    request = OrderRequest.model_json_schema()
    busy = _json("Error", "the database is busy or unreachable; retry after Retry-After seconds")
    return {
        "openapi": "3.1.0",
        "info": {"title": "forge_sched orders", "version": "1.0.0",
                 "description": "Orders placed on factories by sched.order_scheduler (leader-elected)."},
        "servers": [{"url": server or "/"}],
        "paths": {
            "/orders": {
                "post": {
                    "summary": "Create an order: assigned to the UP factory with the most free capacity, else pending",
                    "operationId": "createOrder",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                                    "description": "a retried request with the same key and body creates no second "
                                                   "order and gets the first answer again"}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/OrderRequest"}}}},
                    "responses": {
                        "201": _json("Order", "created (or replayed: header Idempotency-Replayed: true)",
                                     {"Location": {"schema": {"type": "string"}}}),
                        "400": _json("Error", "the body is not JSON"),
                        "413": _json("Error", "the body is too large"),
                        "415": _json("Error", "not application/json"),
                        "422": _json("Error", "invalid order or Idempotency-Key; `field` names the input at fault"),
                        "503": busy,
                    },
                },
                "get": {
                    "summary": "List orders, oldest first",
                    "operationId": "listOrders",
                    "parameters": [
                        _query("status", {"enum": list(ORDER_STATUSES)}, "only orders in this status"),
                        _query("factory", {"type": "string"}, "only orders held (or completed) by this factory"),
                        _query("limit", {"type": "integer", "minimum": 1, "default": 100}, "most orders returned"),
                        _query("offset", {"type": "integer", "minimum": 0, "default": 0}, "orders skipped"),
                    ],
                    "responses": {
                        "200": {"description": "the orders", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["orders", "count"], "properties": {
                                "orders": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
                                "count": {"type": "integer"}}}}}},
                        "422": _json("Error", "an unknown or invalid query parameter"),
                    },
                },
            },
            "/orders/{order_id}": {
                "get": {
                    "summary": "One order with its assignment history",
                    "operationId": "getOrder",
                    "parameters": [_path("order_id")],
                    "responses": {"200": _json("Order", "the order"), "404": _json("Error", "no such order")},
                },
            },
            "/factories": {
                "get": {
                    "summary": "Factories: status, risk, capacity, load",
                    "operationId": "listFactories",
                    "responses": {
                        "200": {"description": "the factories, by id", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["factories"], "properties": {
                                "factories": {"type": "array",
                                              "items": {"$ref": "#/components/schemas/Factory"}}}}}}},
                        "422": _json("Error", "a query parameter (none are accepted)"),
                    },
                },
            },
            "/factories/{factory_id}": {
                "get": {
                    "summary": "One factory's capacity and load (getFactoryCapacity)",
                    "operationId": "getFactoryCapacity",
                    "parameters": [_path("factory_id")],
                    "responses": {"200": _json("Factory", "the factory"), "404": _json("Error", "no such factory")},
                },
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {"200": {"description": "OpenAPI 3.1",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {"schemas": {"OrderRequest": request, "Order": ORDER, "Factory": FACTORY, "Error": ERROR}},
    }
