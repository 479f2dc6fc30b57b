"""FactoryStatusService on real gRPC over 127.0.0.1: codes, details, fencing, health, reflection,
and a plain grpcio client built from the .proto alone."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from forge_sched.grpc import SERVICE_NAME, FactoryStatusServicer, RpcFailure, fence_metadata
from forge_sched.proto import factory_status_pb2 as pb
from forge_sched.proto.factory_status_pb2_grpc import FactoryStatusServiceStub

PROTO = Path(__file__).resolve().parents[2] / "src" / "forge_sched" / "proto" / "factory_status.proto"
FENCE = fence_metadata(1, "mms")


async def call(port: int, request: pb.FactoryStatusUpdate, metadata=FENCE) -> pb.StatusResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        return await FactoryStatusServiceStub(channel).ReportFactoryStatus(request, metadata=metadata, timeout=5)


async def refused(port: int, request: pb.FactoryStatusUpdate, metadata=FENCE) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(port, request, metadata)
    return caught.value


def test_a_report_reaches_the_scheduler_and_its_answer_comes_back(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port:
            response = await call(port, pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.DOWN,
                                                               reason="3 beats missed"), fence_metadata(4, "mms"))
            assert (response.accepted, response.detail, response.orders_moved) == (True, "factory-1 DOWN", 2)
            assert scheduler.calls == [("factory-1", "DOWN", "3 beats missed", 4, "mms")]
            new = await call(port, pb.FactoryStatusUpdate(factory_id="factory-9", status=pb.UP), fence_metadata(4, "mms"))
            assert new.accepted and "new factory" in new.detail and scheduler.factories["factory-9"] == "UP"
    arun(body)


@pytest.mark.parametrize(("request_", "metadata", "field"), [
    (pb.FactoryStatusUpdate(factory_id="", status=pb.DOWN), fence_metadata(1, "mms"), "factory_id"),
    (pb.FactoryStatusUpdate(factory_id="  ", status=pb.DOWN), fence_metadata(1, "mms"), "factory_id"),
    (pb.FactoryStatusUpdate(factory_id="factory-1"), fence_metadata(1, "mms"), "status: UNSPECIFIED (0)"),
    (pb.FactoryStatusUpdate(factory_id="factory-1", status=7), fence_metadata(1, "mms"), "status: unknown (7)"),
    (pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.UP), (), "forge-epoch: missing"),
    (pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.UP), (("forge-epoch", "x"), ("forge-lease", "mms")),
     "forge-epoch: must be a positive integer"),
    (pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.UP), (("forge-epoch", "3"),), "forge-lease: missing"),
])
def test_bad_input_is_invalid_argument_naming_the_field(scheduler, serve, arun, request_, metadata, field) -> None:
    async def body() -> None:
        async with serve(scheduler) as port:
            error = await refused(port, request_, metadata)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details().startswith(field), error.details()
            assert scheduler.calls == []  # refused before the scheduler
    arun(body)


def test_the_schedulers_own_validation_names_its_field(scheduler, serve, arun) -> None:
    from forge_sched.orders.status import invalid
    answers = iter([invalid("factory_id", "factory_id 'a b' is not an id"), invalid("reason", "too long")])

    async def scheduler_refuses(*_args):
        return next(answers)
    scheduler.report_factory_status = scheduler_refuses

    async def body() -> None:
        async with serve(scheduler) as port:
            error = await refused(port, pb.FactoryStatusUpdate(factory_id="a b", status=pb.UP))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == "factory_id 'a b' is not an id"
            error = await refused(port, pb.FactoryStatusUpdate(factory_id="a", status=pb.UP))
            assert error.details() == "reason: too long"  # the field is named when the detail does not
    arun(body)


def test_a_stale_epoch_is_failed_precondition_with_the_newest_epoch(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port:
            update = pb.FactoryStatusUpdate(factory_id="factory-2", status=pb.DOWN, reason="r")
            assert (await call(port, update, fence_metadata(5, "mms"))).accepted
            assert (await call(port, update, fence_metadata(5, "mms"))).accepted  # the same holder again
            error = await refused(port, update, fence_metadata(4, "mms"))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "newest is 5" in error.details() and "stale epoch 4" in error.details()
            assert (await call(port, update, fence_metadata(1, "other-lease"))).accepted  # fences are per lease
    arun(body)


@pytest.mark.parametrize(("code", "status"), [("not_leader", grpc.StatusCode.UNAVAILABLE),
                                              ("unavailable", grpc.StatusCode.UNAVAILABLE),
                                              ("something_new", grpc.StatusCode.INTERNAL)])
def test_scheduler_result_codes_map_to_grpc_codes(scheduler, serve, arun, code, status) -> None:
    scheduler.code = code

    async def body() -> None:
        async with serve(scheduler) as port:
            error = await refused(port, pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.UP))
            assert (error.code(), error.details()) == (status, f"forced {code}")
    arun(body)


def test_a_scheduler_crash_is_internal_and_names_the_error(scheduler, serve, arun) -> None:
    scheduler.fail = RuntimeError("database is gone")

    async def body() -> None:
        async with serve(scheduler) as port:
            error = await refused(port, pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.UP))
            assert error.code() == grpc.StatusCode.INTERNAL
            assert "RuntimeError: database is gone" in error.details()
    arun(body)


def test_in_process_calls_without_a_context(scheduler, arun) -> None:
    servicer = FactoryStatusServicer(scheduler)

    async def body() -> None:
        update = pb.FactoryStatusUpdate(factory_id="factory-1", status=pb.DEGRADED)
        response = await servicer.report(update, fence_metadata(2, "mms"))
        assert response.accepted and scheduler.factories["factory-1"] == "DEGRADED"
        with pytest.raises(RpcFailure) as caught:
            await servicer.ReportFactoryStatus(update, None)  # no metadata: not fenced
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and "forge-epoch" in caught.value.detail
    arun(body)


def test_health_check_answers_serving(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
    arun(body)


def test_reflection_lists_and_describes_the_service(scheduler, serve, arun) -> None:
    async def body() -> None:
        async with serve(scheduler) as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)]
            answers = [answer async for answer in stub.ServerReflectionInfo(iter(requests), timeout=5)]
            listed = {s.name for s in answers[0].list_services_response.service}
            assert SERVICE_NAME in listed and "grpc.health.v1.Health" in listed
            from google.protobuf import descriptor_pb2
            file = descriptor_pb2.FileDescriptorProto.FromString(
                answers[1].file_descriptor_response.file_descriptor_proto[0])
            assert file.package == "forge.sched.v1"
            assert [m.name for m in file.service[0].method] == ["ReportFactoryStatus", "GetFactoryCapacity"]
    arun(body)


PLAIN_CLIENT = '''
import sys, grpc, factory_status_pb2 as pb, factory_status_pb2_grpc as rpc
channel = grpc.insecure_channel(sys.argv[1])
stub = rpc.FactoryStatusServiceStub(channel)
update = pb.FactoryStatusUpdate(factory_id="factory-3", status=pb.DOWN, reason="plain client")
reply = stub.ReportFactoryStatus(update, metadata=[("forge-epoch", "9"), ("forge-lease", "mms")], timeout=10)
print(reply.accepted, reply.orders_moved, reply.detail)
try:
    stub.ReportFactoryStatus(update, metadata=[("forge-epoch", "8"), ("forge-lease", "mms")], timeout=10)
except grpc.RpcError as e:
    print(e.code().name, e.details())
'''


def test_a_plain_grpcio_client_built_from_the_proto_alone(scheduler, serve, arun, tmp_path) -> None:
    """What a user without Forge does: protoc the .proto, ten lines of grpcio."""
    from grpc_tools import protoc
    assert protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                        str(PROTO)]) == 0
    script = tmp_path / "client.py"
    script.write_text(textwrap.dedent(PLAIN_CLIENT))
    assert len(PLAIN_CLIENT.strip().splitlines()) <= 10

    async def body() -> str:
        async with serve(scheduler) as port:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(script), f"127.0.0.1:{port}", cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return out.decode()
    lines = arun(body).splitlines()
    assert lines[0] == "True 2 factory-3 DOWN (new factory)"
    assert lines[1].startswith("FAILED_PRECONDITION stale epoch 8") and "newest is 9" in lines[1]
