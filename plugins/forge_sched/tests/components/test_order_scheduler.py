"""sched.order_scheduler in a TestPlant (virtual time, memory bus, SQLite): two replicas, one leads;
status reports over the bus, completions from factories, REST through the runtime's HTTP app
in-process, a leader failover, and the end-of-run checks."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from forge_core.tactics import NotLeader
from forge_core.testing import TestPlant

MANIFEST = """
version: 1
plant: {{name: orders_test}}
plugins: [sched]
local_plugins: [types.py]
transports: {{bus: {{type: memory}}}}
default_transport: bus
components:
  pms:
    type: sched.order_scheduler
    replicas: 2
    params: {params}
tactics:
  leader: {{use: memory, ttl: 5.0, renew_every: 2.0, retry_every: 1.0}}
storage: {{url: "sqlite:///{root}/plant.db", migrate_on_start: true}}
"""

# The MMS's message types, declared here (after every plugin, where forge_mms is not installed) so the
# test does not depend on forge_mms: plugins never import each other.
TYPES = '''
from forge_core import hookimpl

SCHEMAS = {
    "mms.status_report": {"type": "object", "x-forge-type": "mms.status_report"},
    "mms.risk_changed": {"type": "object", "x-forge-type": "mms.risk_changed"},
    "mms.factory_heartbeat": {"type": "object", "x-forge-type": "mms.factory_heartbeat"},
}


@hookimpl(trylast=True)
def forge_register_schemas(registry):
    for name, schema in SCHEMAS.items():
        if name not in registry:
            registry.add(name, schema)
'''


@pytest.fixture
def plant(tmp_path: Path):
    plants: list[TestPlant] = []

    def make(params: dict[str, Any] | None = None) -> TestPlant:
        root = tmp_path / f"p{len(plants)}"
        root.mkdir()
        (root / "types.py").write_text(TYPES)
        (root / "plant.yaml").write_text(textwrap.dedent(MANIFEST.format(
            root=root, params=json.dumps(params or {"capacities": {"f1": 2, "f2": 2}}))))
        p = TestPlant(root, seed=3)
        plants.append(p)
        return p.start()

    yield make
    for p in plants:
        p.stop()


def running(plant: TestPlant) -> list[Any]:
    found = []
    for name in ("pms-0", "pms-1"):
        try:
            found.append(plant.component(name))
        except KeyError:  # killed
            continue
    return found


def leader(plant: TestPlant) -> Any:
    leading = [c for c in running(plant) if c.leading]
    assert len(leading) == 1, "exactly one replica leads"
    return leading[0]


def rest(plant: TestPlant, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=plant.runtime.http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pms") as client:
            return await client.request(method, path, **kwargs)

    return plant._run(go())


def report(plant: TestPlant, factory: str, status: str, epoch: int, request_id: str) -> dict[str, Any]:
    seen = len(plant.observed)
    plant.publish("mms/status_report", "mms.status_report", {"requestId": request_id, "factoryId": factory,
                                                             "status": status, "reason": "test", "epoch": epoch,
                                                             "lease": "mms"})
    return plant.expect("sched.status_report_result", within=2, after=seen,
                        where=lambda e: e.payload["requestId"] == request_id).payload


def test_orders_flow_through_rest_status_reports_and_completions(plant):
    p = plant()
    p.advance(2)
    lead = leader(p)
    ids = []
    for n in range(1, 6):
        r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": n,
                                             "deadline": "2030-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    p.advance(0.5)
    assigned = p.sent(type="sched.order_assigned")
    assert sorted(e.topic for e in assigned) == ["factory/f1/orders"] * 2 + ["factory/f2/orders"] * 2
    assert all(e.payload["epoch"] == lead.elector.epoch for e in assigned)
    assert len(p.sent(type="sched.order_created")) == 5

    down = report(p, "f1", "DOWN", 4, "r1")
    assert down["accepted"] and down["ordersMoved"] == 0, down  # f2 full: f1's two go pending
    revoked = p.sent(type="sched.order_revoked")
    assert sorted(e.topic for e in revoked) == ["factory/f1/orders/revoked"] * 2
    stale = report(p, "f1", "UP", 3, "r2")
    assert not stale["accepted"] and stale["code"] == "stale_epoch"

    on_f2 = [e.payload["orderId"] for e in assigned if e.payload["factoryId"] == "f2"]
    p.publish("factory/f2/progress", "sched.order_progress", {"orderId": on_f2[0], "factoryId": "f2", "progress": 0.5})
    for _ in range(2):  # the second completion is counted, not applied
        p.publish("factory/f2/completed", "sched.order_completed", {"orderId": on_f2[0], "factoryId": "f2"})
    p.advance(0.5)
    placed = [e for e in p.sent(type="sched.order_assigned") if e not in assigned]
    assert [e.payload["factoryId"] for e in placed] == ["f2"], "the freed slot takes a pending order at once"

    up = report(p, "f1", "UP", 4, "r3")
    assert up["accepted"], up
    p.advance(0.5)
    factories = {f["id"]: f for f in rest(p, "GET", "/factories").json()["factories"]}
    assert factories["f1"]["load"] == 2 and factories["f2"]["load"] == 2 and factories["f1"]["status"] == "UP"
    assert rest(p, "GET", f"/orders/{on_f2[0]}").json()["status"] == "completed"
    both = [p.component(n).report() for n in ("pms-0", "pms-1")]  # completions go to either replica (shared)
    assert sum(s["completed"] for s in both) == 1 and sum(s["duplicate_completions"] for s in both) == 1
    assert leader(p).report()["stale_reports"] == 1
    for name in ("pms-0", "pms-1"):
        assert all(c.passed for c in p.component(name).checks()), p.component(name).checks()


def test_the_shadow_takes_over_and_the_old_epoch_is_refused(plant):
    p = plant()
    p.advance(2)
    first = leader(p)
    other = "pms-1" if first.name == "pms-0" else "pms-0"
    p.kill(first.name)
    p.advance(8)
    second = leader(p)
    assert second.name == other and second.elector.epoch > first.elector.epoch
    r = rest(p, "POST", "/orders", json={"product_type": "gear", "quantity": 1, "deadline": "2030-01-01T00:00:00Z"})
    assert r.status_code == 201
    p.advance(1.5)
    assert rest(p, "GET", f"/orders/{r.json()['id']}").json()["factory_id"] in ("f1", "f2")
    old_epoch = first.elector.epoch
    first.service.leader_epoch = lambda: old_epoch  # a deposed leader that still believes it leads
    with pytest.raises(NotLeader, match="older than"):  # ... is refused by the database
        p._run(first.service.configure_factories({"f9": 1}))
    assert "f9" not in {f["id"] for f in rest(p, "GET", "/factories").json()["factories"]}


def test_bad_status_reports_are_answered_and_change_nothing(plant):
    p = plant({"capacities": {"f1": 1}, "require_epoch": True})
    p.advance(2)
    assert report(p, "", "DOWN", 1, "a")["field"] == "factory_id"
    assert report(p, "f1", "BROKEN", 1, "b")["field"] == "status"
    assert report(p, "f1", "DOWN", -1, "c")["field"] == "epoch"
    # 2.0 passes the message's JSON Schema ("integer") and is refused here, compiled or not (no TypeError)
    assert report(p, "f1", "DOWN", 2.0, "c2")["field"] == "epoch"  # type: ignore[arg-type]
    seen = len(p.observed)
    p.publish("mms/status_report", "mms.status_report", {"requestId": "d", "factoryId": "f1", "status": "DOWN"})
    no_epoch = p.expect("sched.status_report_result", within=2, after=seen, where=lambda e: e.payload["requestId"] == "d")
    assert no_epoch.payload["code"] == "invalid_argument" and no_epoch.payload["field"] == "epoch"
    p.publish("mms/status_report", "mms.status_report", {"factoryId": "f1", "status": "DOWN", "epoch": 1})
    p.advance(1)
    assert leader(p).counts["bad_messages"] == 1
    assert rest(p, "GET", "/factories/f1").json()["status"] == "UP"


def test_a_factory_first_heard_in_a_heartbeat_is_added(plant):
    p = plant({"capacities": {}, "default_capacity": 4})
    p.advance(2)
    p.publish("factory/factory-9/heartbeat", "mms.factory_heartbeat",
              {"factoryId": "factory-9", "timestamp": 1.0, "metrics": {"cpu": 1, "memory": 1, "errors": 0}})
    p.advance(0.5)
    assert rest(p, "GET", "/factories/factory-9").json()["capacity"] == 4
    p.publish("mms/risk/factory-9", "mms.risk_changed", {"factoryId": "factory-9", "risk": "HIGH"})
    p.advance(0.5)
    assert rest(p, "GET", "/factories").json()["factories"][0]["risk"] == "HIGH"



def test_rest_over_a_real_socket_on_a_real_clock(tmp_path: Path):
    from forge_core.plant import load_plant
    from forge_core.runtime import Runtime

    (tmp_path / "types.py").write_text(TYPES)
    manifest = textwrap.dedent(MANIFEST.format(root=tmp_path, params=json.dumps({"capacities": {"f1": 1}})))
    (tmp_path / "plant.yaml").write_text(manifest.replace("replicas: 2", "replicas: 1")
                                         + "runtime: {health: false, http: {host: 127.0.0.1, port: 0}}\n")
    plugins, loaded = load_plant(tmp_path / "plant.yaml")

    async def scenario() -> tuple[str, list[httpx.Response]]:
        runtime = Runtime(loaded, plugins)
        await runtime.start()
        try:
            url = runtime.http.url
            assert url is not None and url.startswith("http://127.0.0.1:")
            # no TLS context (httpx would load certifi's CA bundle on this loop), no proxy from the environment,
            # and a timeout that only ends a hung test instead of httpx's 5 s
            async with httpx.AsyncClient(base_url=url, verify=False, trust_env=False, timeout=60.0) as client:
                # until elected (the first lease is taken at once): a deadline, not 100 tries that a loaded
                # loop can spend before the leader serves, after which the test went on unelected
                deadline = asyncio.get_running_loop().time() + 60.0
                while not (await client.get("/factories")).json()["factories"]:
                    assert asyncio.get_running_loop().time() < deadline, "no leader served /factories in 60 s"
                    await asyncio.sleep(0.05)
                body = {"product_type": "gear", "quantity": 2, "deadline": "2030-01-01T00:00:00+01:00"}
                answers = [await client.post("/orders", json=body, headers={"Idempotency-Key": "curl-1"}),
                           await client.post("/orders", json=body, headers={"Idempotency-Key": "curl-1"}),
                           await client.post("/orders", content=b"{", headers={"content-type": "application/json"}),
                           await client.get("/openapi.json")]
        finally:
            await runtime.stop()
        return url, answers

    url, (first, again, broken, doc) = asyncio.run(scenario())
    assert first.status_code == 201 and first.json()["factory_id"] == "f1"
    assert first.json()["deadline"] == "2029-12-31T23:00:00Z", "stored and shown in UTC"
    assert again.json() == first.json() and again.headers["idempotency-replayed"] == "true"
    assert broken.status_code == 400 and broken.json()["field"] == "body"
    assert doc.json()["openapi"] == "3.1.0"
    with pytest.raises(httpx.ConnectError):  # nothing left listening
        httpx.get(url + "/factories", timeout=1)
