"""The embedded profile on the real clock, as an operator runs it: ``forge run examples/industry40
--duration 30s`` in a copy of the example (the plant writes ``.forge/``, ``inbox/`` and ``outbox/``
beside its manifest), then over real sockets at the HTTP and gRPC addresses it prints: orders, the
PMS's factories, OpenAPI and probes, the gRPC health check and a plain grpcio status report, and the
operator's mode command (``POST /simulator/factories/{id}/mode``: factory-2 stopped is DOWN in
``GET /factories`` within seconds, recovered is UP again). The run ends by itself with exit 0 and its
summary. Everything else about the plant runs under virtual time (``test_scenarios.py``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from industry40.testing import PLANT, registered_types

grpc = pytest.importorskip("grpc")
health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not registered_types() >= {"sched.order_scheduler", "mms.factory_monitor", "b2mml.http_inbox"},
        reason="forge-sched, forge-mms or forge-b2mml missing",
    ),
]

# seconds of the run: start (~2 s), WARM_UP, DOWN (3 s after the last beat), UP (5 beats): ~21 s at load 2 with
# other test runs beside it; 25 s left 4 s, too little on a busier machine
DURATION = 30
WARM_UP = 10.0  # seconds factory-2 beats before it is stopped (see the test)
T = TypeVar("T")


def start(plant: Path) -> tuple[subprocess.Popen[str], Path]:
    """``forge run PLANT --duration 25s --json``: the summary on stdout, the banner and logs in a file."""
    log = plant / "run.log"
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("FORGE_DEBUG", None)
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forge_core.cli", "run", str(plant), "--duration", f"{DURATION}s", "--json"],
            cwd=plant,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    return proc, log


def addresses(proc: subprocess.Popen[str], log: Path, bound: float = 60.0) -> tuple[str, str]:
    """The HTTP base URL and gRPC target the run prints under its start line."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        text = log.read_text()
        http, target = re.search(r"HTTP on (http://[\d.]+:\d+)", text), re.search(r"gRPC on ([\d.]+:\d+)", text)
        if http and target:
            return http[1], target[1]
        assert proc.poll() is None, f"forge run ended before serving:\n{text[-3000:]}"
        time.sleep(0.2)
    raise AssertionError(f"no HTTP and gRPC addresses printed within {bound} s:\n{log.read_text()[-3000:]}")


def until(what: str, probe: Callable[[], T | None], bound: float, every: float = 0.2) -> tuple[T, float]:
    """Poll ``probe`` until it returns something; (that, seconds it took); fail naming ``what``."""
    began = time.monotonic()
    while True:
        found = probe()
        if found is not None:
            return found, time.monotonic() - began
        if time.monotonic() - began > bound:
            raise AssertionError(f"{what}: not within {bound} s")
        time.sleep(every)


def watched(http: httpx.Client) -> bool | None:
    views = {f["id"]: f for f in http.get("/factories").json()["factories"]}
    reported = [views.get(f"factory-{n}", {}) for n in range(1, 5)]
    return all(v.get("status") == "UP" and v.get("reason") for v in reported) or None


def factory_view(http: httpx.Client, factory: str) -> dict[str, Any]:
    answer = http.get(f"/factories/{factory}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def status_of(http: httpx.Client, factory: str) -> str:
    return factory_view(http, factory)["status"]


def test_the_embedded_plant_answers_over_real_sockets_and_takes_mode_commands(tmp_path: Path) -> None:
    plant = tmp_path / "industry40"
    plant.mkdir()
    shutil.copy(PLANT / "plant.yaml", plant)
    shutil.copytree(PLANT / "schemas", plant / "schemas")
    proc, log = start(plant)
    began = time.monotonic()
    try:
        base, target = addresses(proc, log)
        with httpx.Client(base_url=base, timeout=10) as http, grpc.insecure_channel(target) as channel:
            until("/ready answers 200", lambda: True if http.get("/ready").status_code == 200 else None, 20)
            # every simulated factory UP in the PMS's view as the MMS reported it (the capacities make them
            # known UP from the start, reason null): a factory stopped before its first beat is never DOWN, the
            # MMS watches only what it has heard
            until("factory-1..4 reported UP by the MMS", lambda: watched(http), 15)

            # the plant's faces: orders, OpenAPI, probes, gRPC
            key = uuid.uuid4().hex
            order = {"product_type": "valve", "quantity": 3, "deadline": "2030-01-01T00:00:00Z"}
            created = http.post("/orders", json=order, headers={"Idempotency-Key": key})
            assert created.status_code == 201, created.text
            read = http.get(f"/orders/{created.json()['id']}")
            assert read.status_code == 200 and read.json()["quantity"] == 3 and read.json()["product_type"] == "valve"
            spec = http.get("/openapi.json")
            assert spec.status_code == 200 and {"/orders", "/factories"} <= set(spec.json()["paths"])
            assert http.get("/health").json()["status"] == "ok" and http.get("/ready").status_code == 200
            check_grpc(channel)
            bad = http.post("/simulator/factories/factory-2/mode", json={"mode": "explode"})
            assert bad.status_code == 422 and bad.json()["field"] == "mode", bad.text
            assert http.post("/simulator/factories/factory-9/mode", json={"mode": "stop"}).status_code == 404

            # The operator stops factory-2 once it has beaten WARM_UP s. Its first beat after the recovery is
            # late (a failed beat); among fewer than 10 beats in the MMS's risk window that is an error rate over
            # 0.1: risk HIGH, and a factory drained for HIGH risk stays DEGRADED for risk_hold (30 s), not UP.
            discovered = factory_view(http, "factory-2")["updated_at"]
            since = time.time() - datetime.fromisoformat(discovered).timestamp()
            time.sleep(max(0.0, WARM_UP - since))
            stopped = http.post("/simulator/factories/factory-2/mode", json={"mode": "stop", "reason": "live test"})
            assert stopped.status_code == 202, stopped.text
            assert stopped.json()["topic"] == "factory/factory-2/mode"
            # the MMS judges it DOWN 3 s after its last beat and tells the PMS
            _, down_after = until(
                "factory-2 DOWN in GET /factories", lambda: status_of(http, "factory-2") == "DOWN" or None, 10
            )
            assert status_of(http, "factory-1") == "UP"
            recovered = http.post("/simulator/factories/factory-2/mode", json={"mode": "recover"})
            assert recovered.status_code == 202, recovered.text
            # UP on the 5th healthy beat after the late one
            _, up_after = until("factory-2 UP again", lambda: status_of(http, "factory-2") == "UP" or None, 10)
            assert factory_view(http, "factory-2")["risk"] != "HIGH"
        print(
            f"\nfactory-2 DOWN {down_after:.1f} s after its stop, UP {up_after:.1f} s after its recovery; "
            f"{DURATION - (time.monotonic() - began):.1f} s of the run left"
        )
        out, _ = proc.communicate(timeout=DURATION + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary: dict[str, Any] = json.loads(out)
    assert summary["clock"] == "real" and summary["stop_reason"].startswith("duration"), summary["stop_reason"]
    assert set(summary["components"].values()) == {"stopped"}, summary["components"]
    assert summary["reports"]["modes"] == {"accepted": 2, "unknown_factory": 1, "rejected": 1}
    factory_2 = summary["reports"]["factory-1"]  # instance factory-1 is factory id factory-2
    assert factory_2["factoryId"] == "factory-2" and factory_2["modes"] == 2 and factory_2["mode"] == "normal"
    failed = [(c["name"], c["detail"]) for c in summary["checks"] if not c["passed"]]
    assert not failed, failed


def check_grpc(channel: Any) -> None:
    """grpc.health.v1 and ReportFactoryStatus with plain grpcio (the .proto's generated stubs)."""
    from forge_sched.proto import factory_status_pb2 as pb
    from forge_sched.proto import factory_status_pb2_grpc as rpc

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "forge.sched.v1.FactoryStatusService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    stub = rpc.FactoryStatusServiceStub(channel)
    report = pb.FactoryStatusUpdate(factory_id="live-9", status=pb.UP, reason="plain grpcio")
    reply = stub.ReportFactoryStatus(report, metadata=[("forge-epoch", "1"), ("forge-lease", "live-test")], timeout=10)
    assert reply.accepted, reply.detail
    with pytest.raises(grpc.RpcError) as refused:  # gRPC always requires the fence (require_epoch is the bus's)
        stub.ReportFactoryStatus(report, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "forge-epoch" in refused.value.details()
