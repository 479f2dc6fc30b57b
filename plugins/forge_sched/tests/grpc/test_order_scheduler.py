"""The real ``sched.order_scheduler`` behind FactoryStatusService: served on the runtime's gRPC
server through ``register(ctx, handler)``, reached by the ``status_reporter.grpc`` client over
127.0.0.1 (real clock, SQLite), and, under virtual time, in-process with two replicas."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from forge_core.runtime import Runtime, load_plant
from forge_core.testing import TestPlant, find_free_port

from forge_sched.grpc import SERVICE_NAME, FactoryStatusServicer, GrpcStatusReporter, fence_metadata
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.settings import GrpcStatusReporterSettings

MANIFEST = """
version: 1
plant: {{name: pms}}
plugins: [sched]
transports: {{bus: {{type: memory}}}}
components:
  pms:
    type: sched.order_scheduler
    replicas: {replicas}
    params: {{capacities: {{factory-1: 2, factory-2: 2}}, schedule_interval: 0.2}}
runtime: {{health: false, grpc: {{port: {port}}}, http: {{port: 0}}}}
storage: {{url: "sqlite:///{{plant_dir}}/plant.db", migrate_on_start: true}}
"""


def write(root: Path, *, port: int = 0, replicas: int = 1) -> Path:
    (root / "plant.yaml").write_text(MANIFEST.format(port=port, replicas=replicas))
    return root


def test_the_order_scheduler_answers_over_real_grpc(tmp_path: Path) -> None:
    port = find_free_port()
    plugins, manifest = load_plant(write(tmp_path, port=port) / "plant.yaml")

    endpoints: list[dict[str, Any]] = []

    async def tap(topic: str, message: Any) -> None:
        if getattr(message, "type", None) == "sched.endpoint":
            endpoints.append(message.payload)

    async def scenario() -> list[Any]:
        runtime = Runtime(manifest, plugins, tap=tap)
        await runtime.start()
        client = GrpcStatusReporter(GrpcStatusReporterSettings(target=f"127.0.0.1:{port}", timeout=5))
        try:
            assert runtime.grpc is not None and runtime.grpc.services() == {SERVICE_NAME: "pms"}
            scheduler = runtime.supervisors["pms"].instance
            deadline = time.monotonic() + 20
            while not scheduler.leading:  # elected, fence moved, factories configured
                assert time.monotonic() < deadline, "the order scheduler never took the lead"
                await asyncio.sleep(0.05)
            while not any(e["leading"] for e in endpoints):  # announced on election
                assert time.monotonic() < deadline, f"no sched.endpoint as leader: {endpoints}"
                await asyncio.sleep(0.05)
            return [await client.report("factory-1", "DOWN", "beats stopped", epoch=3, lease="mms"),
                     await client.report("factory-9", "UP", "first report", epoch=3, lease="mms"),
                     await client.report("factory-1", "UP", "late report", epoch=2, lease="mms"),
                     await client.report("factory-1", "UP", "", epoch=3, lease="")]
        finally:
            await client.aclose()
            await runtime.stop()

    down, new, stale, no_lease = asyncio.run(asyncio.wait_for(scenario(), 60))
    leading = next(e for e in endpoints if e["leading"])
    assert leading["instance"] == "pms" and leading["grpc"] == f"127.0.0.1:{port}" and leading["epoch"] >= 1
    assert leading["http"].startswith("http://127.0.0.1:") and leading["lease"] == "order_scheduler"
    assert down.accepted, down
    assert new.accepted, new  # an unknown factory is added
    assert (stale.accepted, stale.code) == (False, "FAILED_PRECONDITION") and "3" in stale.detail, stale
    assert (no_lease.accepted, no_lease.code) == (False, "INVALID_ARGUMENT") and "forge-lease" in no_lease.detail


def test_two_replicas_in_one_process_share_the_servicer_and_the_leader_answers(tmp_path: Path) -> None:
    with TestPlant(write(tmp_path, replicas=2)) as plant:
        servicer = plant.runtime.grpc.servicer(SERVICE_NAME)
        assert isinstance(servicer, FactoryStatusServicer) and len(servicer.handlers) == 2
        plant.run_until(lambda: any(h.leading for h in servicer.handlers), timeout=30)
        responses, replicas = [], list(servicer.handlers)
        for first in (0, 1):  # the shadow asked first answers not_leader; the leader's answer is the reply
            servicer.handlers[:] = [replicas[first], replicas[1 - first]]
            update = pb.FactoryStatusUpdate(factory_id="factory-2", status=(pb.DOWN, pb.UP)[first], reason="sim")
            responses.append(plant.clock.run(servicer.report(update, fence_metadata(1, "mms"))))
    assert all(r.accepted for r in responses), responses
    assert plant.sent("sched/endpoints") == []  # virtual time: nothing listens, nothing announced
