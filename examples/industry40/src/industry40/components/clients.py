"""``industry40.clients``: customers posting orders to the PMS's REST API (``POST /orders``).

Every ``min_interval..max_interval`` seconds (seeded) an order with a random product, quantity and
deadline, an ``Idempotency-Key`` per order, tried again with the same key on a 5xx or no answer (a
PMS killed by chaos): a retried order is created once. Without ``url`` the requests go to this
process's HTTP app in-process (one ASGI call per request, :mod:`industry40.components.asgi_client`:
the same routing and handlers, no socket, also under virtual time); with ``url``, over HTTP; with
``endpoints_topic``, over HTTP to the PMS replicas their ``sched.endpoint`` announcements name (the
leader first; each retry goes to the next one, so a killed replica's orders reach the other, which
stores them for the leader).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from forge_core import Check, Component, Envelope, Subscribes
from industry40.components.asgi_client import InProcessClient
from industry40.settings import ClientsParams

ENDPOINT = "sched.endpoint"  # forge-sched's announcement of a PMS replica (its schema is forge-sched's)


class Clients(Component):
    Params = ClientsParams
    params: ClientsParams
    subscribes = (Subscribes(ENDPOINT, param="endpoints_topic", shared=False),)

    async def start(self) -> None:
        self.counts: Counter[str] = Counter()
        self.orders: dict[str, str] = {}  # Idempotency-Key -> order id of every order the PMS accepted
        self.lost: list[str] = []  # keys given up on after every attempt
        self.announced: dict[str, tuple[str, bool, int]] = {}  # PMS instance -> (REST URL, leading, epoch)
        if self.params.endpoints_topic:
            await self.ctx.subscribe(self.params.endpoints_topic, self._on_endpoint, types=[ENDPOINT], shared=False)
        if self.params.enabled:
            self.ctx.spawn(self._posting(), name="orders")

    async def _on_endpoint(self, envelope: Envelope) -> None:
        body = envelope.payload if isinstance(envelope.payload, dict) else {}
        instance, url, epoch = body.get("instance"), body.get("http"), body.get("epoch")
        if isinstance(instance, str) and isinstance(url, str) and url:
            self.announced[instance] = (url, bool(body.get("leading")), epoch if isinstance(epoch, int) else 0)

    def bases(self) -> list[str]:
        """Base URLs to post to, in order: announced replicas (leader, newest epoch first), then ``url``;
        "" for the client's own base (in-process)."""
        p = self.params
        if p.endpoints_topic is None:
            return [""]
        announced = [url for url, _, _ in sorted(self.announced.values(), key=lambda a: (not a[1], -a[2]))]
        return list(dict.fromkeys([*announced, *([p.url] if p.url else [])]))

    def _client(self) -> httpx.AsyncClient | InProcessClient:
        p = self.params
        if p.endpoints_topic is not None:
            return httpx.AsyncClient(timeout=p.timeout)
        if p.url is not None:
            return httpx.AsyncClient(base_url=p.url, timeout=p.timeout)
        return InProcessClient(self.ctx.http.app)

    async def _posting(self) -> None:
        p, rnd, clock = self.params, self.ctx.random, self.ctx.clock
        await clock.sleep(p.first_after)
        async with self._client() as client:
            while True:
                deadline = datetime.fromtimestamp(clock.time() + p.deadline_after, UTC)
                body = {"product_type": rnd.choice(p.products),
                        "quantity": rnd.randint(p.min_quantity, p.max_quantity),
                        "deadline": deadline.isoformat().replace("+00:00", "Z")}
                await self.post(client, body, uuid.UUID(int=rnd.getrandbits(128)).hex)
                await clock.sleep(rnd.uniform(p.min_interval, p.max_interval))

    async def post(self, client: httpx.AsyncClient | InProcessClient, body: dict[str, Any],
                   key: str) -> dict[str, Any] | None:
        """POST one order, retried with the same key; the order's JSON, or None when given up."""
        p = self.params
        for attempt in range(1, p.attempts + 1):
            bases = self.bases()
            if not bases:
                self.counts["no_endpoint"] += 1
                self.ctx.log.info("POST %s: no PMS announced yet, attempt %d", p.path, attempt)
                await self.ctx.clock.sleep(p.retry_after)
                continue
            try:
                response = await client.post(bases[(attempt - 1) % len(bases)] + p.path, json=body,
                                             headers={"Idempotency-Key": key})
            except httpx.HTTPError as exc:
                self.counts["no_answer"] += 1
                self.ctx.log.info("POST %s: no answer (%s), attempt %d", p.path, exc, attempt)
            else:
                if response.status_code < 500:
                    self.counts[str(response.status_code)] += 1
                    if response.status_code != 201:
                        self.ctx.log.warning("POST %s: %d %s", p.path, response.status_code, response.text[:200])
                        return None
                    order: dict[str, Any] = response.json()
                    self.orders[key] = str(order.get("id") or order.get("orderId"))
                    self.counts["retried_ok" if attempt > 1 else "created"] += 1
                    return order
                self.counts[str(response.status_code)] += 1
            await self.ctx.clock.sleep(p.retry_after)
        self.lost.append(key)
        return None

    def report(self) -> dict[str, Any]:
        return {"enabled": self.params.enabled, "accepted": len(self.orders), "given_up": len(self.lost),
                **dict(sorted(self.counts.items()))}

    def checks(self) -> list[Check]:
        if not self.params.enabled:
            return []
        return [Check("every order posted was accepted (retries included)", not self.lost,
                      f"{len(self.orders)} accepted" if not self.lost else
                      f"{len(self.lost)} given up after {self.params.attempts} attempts")]
