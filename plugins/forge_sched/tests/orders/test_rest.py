"""The REST API through httpx's ASGITransport (no socket): every route, bad input at every edge, the
Idempotency-Key, and /openapi.json against the routes and the OpenAPI validator."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate as validate_openapi
from starlette.routing import Route

from forge_sched.orders import queries
from forge_sched.orders.rest import OrdersApi

from .conftest import sqlite_engine

GOOD = {"product_type": "widget", "quantity": 5, "deadline": "2030-01-31T12:00:00Z"}


@pytest.fixture
def engine(tmp_path, sqlite_template):
    """SQLite only: the API is the same over either database (the service tests run both)."""
    engine = sqlite_engine(sqlite_template, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def api(engine, make_service):
    service = make_service()
    asyncio.run(service.configure_factories({"f1": 2, "f2": 1}))
    writes: list[int] = []

    async def after_write() -> None:
        writes.append(1)

    api = OrdersApi(service, leading=lambda: api.lead, after_write=after_write, max_body_bytes=1024, page_limit=50)
    api.lead = True  # type: ignore[attr-defined]
    api.writes = writes  # type: ignore[attr-defined]
    return api


def call(api: OrdersApi, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://pms") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def post(api: OrdersApi, body: Any, **headers: str) -> httpx.Response:
    return call(api, "POST", "/orders", content=json.dumps(body), headers={"content-type": "application/json",
                                                                          **headers})


def test_post_creates_and_places_an_order(api, engine):
    r = post(api, GOOD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "assigned" and body["factory_id"] == "f1" and body["quantity"] == 5
    assert body["deadline"] == "2030-01-31T12:00:00Z" and r.headers["location"] == f"/orders/{body['id']}"
    assert api.writes == [1], "the outbox is relayed after the commit"
    assert call(api, "GET", f"/orders/{body['id']}").json()["assignments"][0]["factory_id"] == "f1"


def test_a_shadow_stores_the_order_pending(api):
    api.lead = False
    r = post(api, GOOD)
    assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["factory_id"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({**GOOD, "product_type": ""}, "product_type"),
    ({**GOOD, "product_type": " padded "}, "product_type"),
    ({**GOOD, "product_type": "x" * 101}, "product_type"),
    ({**GOOD, "product_type": 7}, "product_type"),
    ({k: v for k, v in GOOD.items() if k != "product_type"}, "product_type"),
    ({**GOOD, "quantity": 0}, "quantity"),
    ({**GOOD, "quantity": -3}, "quantity"),
    ({**GOOD, "quantity": "5"}, "quantity"),
    ({**GOOD, "quantity": 2.5}, "quantity"),
    ({**GOOD, "quantity": True}, "quantity"),
    ({**GOOD, "quantity": 10**7}, "quantity"),
    ({**GOOD, "quantity": None}, "quantity"),
    ({k: v for k, v in GOOD.items() if k != "deadline"}, "deadline"),
    ({**GOOD, "deadline": "2030-01-31T12:00:00"}, "deadline"),
    ({**GOOD, "deadline": "tomorrow"}, "deadline"),
    ({**GOOD, "deadline": 1893456000}, "deadline"),
    ({**GOOD, "deadline": "2030-02-30T00:00:00Z"}, "deadline"),
    ({**GOOD, "deadline": "9999-12-31T23:59:59-12:00"}, "deadline"),  # no UTC date-time (was a 500)
    ({**GOOD, "deadline": "0001-01-01T00:00:00+01:00"}, "deadline"),
    ({**GOOD, "product_type": "a\x00b"}, "product_type"),  # PostgreSQL cannot store NUL (was accepted)
    ({**GOOD, "product_type": "tab\there"}, "product_type"),
    ({**GOOD, "priority": 1}, "priority"),
    ([GOOD], "body"),
    ("widget", "body"),
    (None, "body"),
])
def test_invalid_orders_are_422_naming_the_field(api, engine, body, field):
    r = post(api, body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and field in r.json()["error"]
    assert queries.list_orders(engine) == [], "nothing stored"


@pytest.mark.parametrize(("content", "headers", "status", "field"), [
    (b"{not json", {"content-type": "application/json"}, 400, "body"),
    (b"", {"content-type": "application/json"}, 400, "body"),
    (b"\xff\xfe", {"content-type": "application/json"}, 400, "body"),
    (b'{"product_type": "a", "quantity": 1, "quantity": 9, "deadline": "2030-01-31T12:00:00Z"}',
     {"content-type": "application/json"}, 400, "body"),  # a repeated key (was: the last one won)
    (b'{"product_type": "w", "quantity": NaN, "deadline": "2030-01-31T12:00:00Z"}',
     {"content-type": "application/json"}, 422, "quantity"),
    (json.dumps(GOOD).encode(), {"content-type": "text/plain"}, 415, "Content-Type"),
    (json.dumps(GOOD).encode(), {}, 415, "Content-Type"),
    (json.dumps({**GOOD, "product_type": "x" * 2000}).encode(), {"content-type": "application/json"}, 413, "body"),
    (json.dumps(GOOD).encode(), {"content-type": "application/json", "idempotency-key": "k" * 201}, 422,
     "Idempotency-Key"),
    (json.dumps(GOOD).encode(), {"content-type": "application/json", "idempotency-key": "has space"}, 422,
     "Idempotency-Key"),
])
def test_malformed_requests(api, engine, content, headers, status, field):
    r = call(api, "POST", "/orders", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert queries.list_orders(engine) == []


def test_json_nested_deeper_than_python_parses_is_400_not_500(api, engine):
    """Within the default max_body_bytes (64 KiB) an array nested 20,000 deep raises RecursionError in
    json.loads (was an unhandled 500)."""
    api.max_body_bytes = 65536
    r = call(api, "POST", "/orders", content=b"[" * 20000 + b"]" * 20000,
             headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body" and "nested" in r.json()["error"], r.text
    assert queries.list_orders(engine) == []


def test_an_idempotency_key_makes_a_retry_return_the_same_body_and_create_nothing(api, engine):
    first = post(api, GOOD, **{"Idempotency-Key": "req-42"})
    post(api, {**GOOD, "quantity": 1})  # another order in between changes the loads
    again = post(api, GOOD, **{"Idempotency-Key": "req-42"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotency-replayed"] == "true"
    assert "idempotency-replayed" not in first.headers
    assert len(queries.list_orders(engine)) == 2
    other = post(api, {**GOOD, "quantity": 6}, **{"Idempotency-Key": "req-42"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert len(queries.list_orders(engine)) == 2


def test_list_and_filter_orders(api):
    ids = [post(api, {**GOOD, "quantity": n}).json()["id"] for n in (1, 2, 3, 4)]
    everything = call(api, "GET", "/orders").json()
    assert [o["id"] for o in everything["orders"]] == ids and everything["count"] == 4
    assert {o["id"] for o in call(api, "GET", "/orders", params={"status": "pending"}).json()["orders"]} == {ids[3]}
    on_f1 = call(api, "GET", "/orders", params={"factory": "f1"}).json()["orders"]
    assert [o["factory_id"] for o in on_f1] == ["f1", "f1"]
    page = call(api, "GET", "/orders", params={"limit": 2, "offset": 1}).json()["orders"]
    assert [o["id"] for o in page] == ids[1:3]


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "lost"}, "status"), ({"factory": "no spaces"}, "factory"), ({"limit": 0}, "limit"),
    ({"limit": 51}, "limit"), ({"limit": "x"}, "limit"), ({"offset": -1}, "offset"), ({"sort": "id"}, "sort"),
])
def test_bad_list_queries_are_422(api, params, field):
    r = call(api, "GET", "/orders", params=params)
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_unknown_order_and_factory_are_404_with_a_clear_body(api):
    r = call(api, "GET", "/orders/ord-nope")
    assert r.status_code == 404 and r.json() == {"error": "order 'ord-nope' not found", "order_id": "ord-nope"}
    assert call(api, "GET", "/orders/" + "x" * 500).status_code == 404
    r = call(api, "GET", "/factories/f9")
    assert r.status_code == 404 and "f9" in r.json()["error"]
    assert call(api, "DELETE", "/orders/x").status_code == 405


def test_factories_show_status_risk_capacity_and_load(api):
    post(api, GOOD)
    asyncio.run(api.service.set_risk("f2", "HIGH"))
    factories = call(api, "GET", "/factories").json()["factories"]
    assert [(f["id"], f["status"], f["risk"], f["capacity"], f["load"], f["free"]) for f in factories] == [
        ("f1", "UP", None, 2, 1, 1), ("f2", "UP", "HIGH", 1, 0, 1)]
    assert call(api, "GET", "/factories/f1").json()["load"] == 1
    assert call(api, "GET", "/factories", params={"status": "UP"}).status_code == 422


def test_openapi_document_is_valid_and_documents_exactly_the_routes(api):
    doc = call(api, "GET", "/openapi.json").json()
    validate_openapi(doc)  # raises on an invalid OpenAPI 3.1 document
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = {(route.path, method) for route in api.app.routes if isinstance(route, Route)
              for method in (route.methods or ()) if method != "HEAD"}
    assert documented == served
    schema = doc["components"]["schemas"]["OrderRequest"]
    assert set(schema["required"]) == {"product_type", "quantity", "deadline"}


def test_concurrent_posts_share_the_relay_and_each_answer_follows_a_relay_of_its_order(api):
    """Orders committed while a relay runs share the next one: fewer relays than orders, yet every
    201 comes after a relay that started after that order's commit (its messages were handed on)."""
    service = api.service
    committed: dict[str, int] = {}  # order id -> how many orders had committed with it
    runs: list[list[int]] = []  # per relay: [orders committed when it started, 1 once it ended]
    create = service.create_order

    async def create_order(*args: Any, **kwargs: Any) -> Any:
        view, created = await create(*args, **kwargs)
        committed[view["id"]] = service.stats["created"]
        return view, created

    async def after_write() -> None:
        run = [service.stats["created"], 0]
        runs.append(run)
        await asyncio.sleep(0.01)  # a relay's publishes and delete
        run[1] = 1

    service.create_order = create_order
    api.after_write = after_write

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://pms") as client:
            async def one(n: int) -> None:
                r = await client.post("/orders", json={**GOOD, "quantity": n + 1})
                assert r.status_code == 201, r.text
                mine = committed[r.json()["id"]]
                assert any(done and started >= mine for started, done in runs), (mine, runs)

            await asyncio.gather(*(one(n) for n in range(12)))

    asyncio.run(go())
    assert len(committed) == 12 and 2 <= len(runs) < 12, runs
    assert api.after_writes["runs"] == len(runs) and api.after_writes["shared"] >= 12 - len(runs)
    assert runs[-1][0] == 12, "the last relay covered every commit"
