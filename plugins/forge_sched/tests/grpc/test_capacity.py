"""GetFactoryCapacity: the servicer over a real grpc.aio server, a plain grpcio client built from the
.proto, the status_reporter.grpc client's capacity(), and the real order scheduler answering it over
gRPC (any replica) and on the bus (the leader)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from forge_core.testing import TestPlant, find_free_port

from forge_sched.grpc import FactoryStatusServicer, GrpcStatusReporter, RpcFailure, StatusReportUnavailable
from forge_sched.orders.status import FactoryCapacity
from forge_sched.proto import SERVICE_NAME
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceStub
from forge_sched.settings import GrpcStatusReporterSettings

PROTO = Path(__file__).resolve().parents[2] / "src" / "forge_sched" / "proto" / "factory_status.proto"


def test_the_servicer_answers_every_factorys_capacity_over_grpc(scheduler, serve, arun) -> None:
    scheduler.factories["factory-2"] = "DOWN"
    scheduler.loads = {"factory-1": 7, "factory-2": 12}

    async def body() -> pb.CapacityResponse:
        async with serve(scheduler) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            return await FactoryStatusServiceStub(channel).GetFactoryCapacity(pb.CapacityRequest(), timeout=5)

    response = arun(body)
    assert [
        (f.factory_id, pb.FactoryStatus.Name(f.status), f.capacity, f.load, f.free) for f in response.factories
    ] == [("factory-1", "UP", 10, 7, 3), ("factory-2", "DOWN", 10, 12, -2)]
    assert scheduler.calls == [], "a read: no status report made"


def test_a_replica_that_cannot_read_passes_to_the_next_and_none_is_unavailable(scheduler, arun) -> None:
    class Broken:
        async def report_factory_status(self, *args):  # pragma: no cover - not called
            raise AssertionError

        async def factory_capacity(self):
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))

    servicer = FactoryStatusServicer(Broken())  # type: ignore[arg-type]
    servicer.add_handler(scheduler)
    answer = arun(lambda: servicer.GetFactoryCapacity(pb.CapacityRequest(), None))
    assert [f.factory_id for f in answer.factories] == ["factory-1", "factory-2"]
    scheduler.capacity_fail = RuntimeError("engine disposed")
    with pytest.raises(RpcFailure) as caught:
        arun(lambda: servicer.capacity())
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert "database is locked" in caught.value.detail and "engine disposed" in caught.value.detail


PLAIN_CLIENT = """
import sys, grpc, factory_status_pb2 as pb, factory_status_pb2_grpc as rpc
stub = rpc.FactoryStatusServiceStub(grpc.insecure_channel(sys.argv[1]))
for f in stub.GetFactoryCapacity(pb.CapacityRequest(), timeout=5).factories:
    print(f.factory_id, pb.FactoryStatus.Name(f.status), f.capacity, f.load, f.free)
"""


def test_a_plain_grpcio_client_reads_the_capacity(scheduler, serve, arun, tmp_path) -> None:
    """Built from the .proto alone, a blocking grpcio channel: what a user without Forge writes."""
    from grpc_tools import protoc

    assert (
        protoc.main(
            ["protoc", f"-I{PROTO.parent}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(PROTO)]
        )
        == 0
    )
    script = tmp_path / "capacity.py"
    script.write_text(textwrap.dedent(PLAIN_CLIENT))
    scheduler.loads = {"factory-2": 4}

    async def body() -> str:
        async with serve(scheduler) as port:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                f"127.0.0.1:{port}",
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return out.decode()

    assert arun(body).splitlines() == ["factory-1 UP 10 0 10", "factory-2 UP 10 4 6"]


def test_the_grpc_reporter_reads_capacity_and_a_dead_server_is_unavailable(scheduler, serve, arun) -> None:
    async def body() -> tuple[list[FactoryCapacity], Exception]:
        async with serve(scheduler) as port:
            client = GrpcStatusReporter(
                GrpcStatusReporterSettings(target=f"127.0.0.1:{port}", timeout=2, reconnect_backoff_max=0.2)
            )
            try:
                answer = await client.capacity()
            finally:
                await client.aclose()
        dead = GrpcStatusReporter(GrpcStatusReporterSettings(target=f"127.0.0.1:{find_free_port()}", timeout=1))
        try:
            await dead.capacity()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            return answer, exc
        finally:
            await dead.aclose()
        raise AssertionError("no error from a dead target")

    answer, error = arun(body)
    assert answer == [FactoryCapacity("factory-1", "UP", 10, 0, 10), FactoryCapacity("factory-2", "UP", 10, 0, 10)]
    assert isinstance(error, StatusReportUnavailable), error


MANIFEST = """
version: 1
plant: {name: pms}
plugins: [sched, mms]            # mms: the mms.capacity_query type
transports: {bus: {type: memory}}
components:
  pms:
    type: sched.order_scheduler
    replicas: 2
    params: {capacities: {factory-1: 2, factory-2: 3}, schedule_interval: 0.2}
runtime: {health: false, grpc: {port: 0}, http: {port: 0}}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: true}
"""


def test_the_order_scheduler_answers_capacity_from_either_replica_and_the_leader_on_the_bus(tmp_path) -> None:
    (tmp_path / "plant.yaml").write_text(MANIFEST)
    with TestPlant(tmp_path) as plant:
        servicer = plant.runtime.grpc.servicer(SERVICE_NAME)
        plant.run_until(lambda: any(h.leading for h in servicer.handlers), timeout=30)
        replicas = list(servicer.handlers)
        shadow = next(h for h in replicas if not h.leading)
        servicer.handlers[:] = [shadow, *(h for h in replicas if h is not shadow)]  # the shadow answers first
        answer = plant.clock.run(servicer.capacity())
        assert [(f.factory_id, f.status, f.capacity, f.load, f.free) for f in answer.factories] == [
            ("factory-1", pb.UP, 2, 0, 2),
            ("factory-2", pb.UP, 3, 0, 3),
        ]

        plant.publish("mms/status_report", "mms.capacity_query", {"requestId": "q-1"})
        plant.advance(0.5)
        answers = plant.sent("sched/status_report_result", type="sched.factory_capacity")
        assert len(answers) == 1, "the leader answers on the bus, the shadow stays silent"
        assert answers[0].source == next(h.name for h in replicas if h.leading)
        assert answers[0].payload == {
            "requestId": "q-1",
            "code": "ok",
            "factories": [
                {"factoryId": "factory-1", "status": "UP", "capacity": 2, "load": 0, "free": 2},
                {"factoryId": "factory-2", "status": "UP", "capacity": 3, "load": 0, "free": 3},
            ],
        }
