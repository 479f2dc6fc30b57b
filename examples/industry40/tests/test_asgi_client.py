"""The simulated clients' in-process HTTP client (``industry40.components.asgi_client``) against the
plant's HTTP app under virtual time: the same answers as over a socket -- 201 with Location, the
Idempotency-Key replay, 422 naming the field, 415, 404 from the runtime's router -- and the body
encoded as httpx's ``json=`` encodes it."""

from __future__ import annotations

import httpx
import pytest
from industry40.components.asgi_client import InProcessClient, NoResponse, _dumps
from industry40.testing import registered_types

pytestmark = pytest.mark.skipif(not registered_types() >= {"sched.order_scheduler"}, reason="forge-sched missing")

ORDER = {"product_type": "gearbox", "quantity": 3, "deadline": "2030-01-01T00:00:00Z"}


def test_posts_reach_the_pms_handlers_with_their_validation_and_idempotency(plant40):
    plant = plant40(keep=("pms", "factory"))
    plant.advance(3.0)  # a PMS replica leads and has mounted its routes
    client = InProcessClient(plant.runtime.http.app)

    async def go() -> list:
        async with client:
            return [await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"}),
                    await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"}),
                    await client.post("/orders", json={**ORDER, "quantity": 0}, headers={"Idempotency-Key": "k-2"}),
                    await client.request("POST", "/orders", b"{}", {"content-type": "text/plain"}),
                    await client.request("GET", "/no/such/path", b"", {})]

    first, again, bad, media, missing = plant._run(go())
    assert first.status_code == 201, first.text
    order = first.json()
    assert first.headers["location"] == f"/orders/{order['id']}" and order["quantity"] == 3
    assert again.status_code == 201 and again.headers["idempotency-replayed"] == "true"
    assert again.json()["id"] == order["id"], "a retried request creates one order"
    assert bad.status_code == 422 and bad.json()["field"] == "quantity"
    assert media.status_code == 415 and media.json()["field"] == "Content-Type"
    assert missing.status_code == 404
    assert [e.payload["orderId"] for e in plant.sent("orders/created", type="sched.order_created")] == [order["id"]]


def test_an_app_that_sends_no_response_is_no_answer_and_an_app_error_propagates(plant40):
    async def silent(scope, receive, send) -> None:
        await receive()

    async def failing(scope, receive, send) -> None:
        raise RuntimeError("handler bug")

    plant = plant40(keep=("factory",))
    with pytest.raises(httpx.HTTPError, match="sent no response"):  # the clients' "no answer" path
        plant._run(InProcessClient(silent).post("/orders", json=ORDER))
    with pytest.raises(RuntimeError, match="handler bug"):
        plant._run(InProcessClient(failing).post("/orders", json=ORDER))
    assert issubclass(NoResponse, httpx.TransportError)


def test_the_body_is_encoded_as_httpx_encodes_json():
    body = {"product_type": "Zahnrad é", "quantity": 2, "nested": [1.5, None, True]}
    assert _dumps(body) == httpx.Request("POST", "http://plant/orders", json=body).content
    with pytest.raises(ValueError):
        _dumps({"quantity": float("nan")})
