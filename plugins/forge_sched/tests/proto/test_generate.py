"""The checked-in stubs are what grpcio-tools generates from factory_status.proto today."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc_tools", reason="grpcio-tools (forge-sched[test]) regenerates the stubs")

from forge_sched.proto import SERVICE_NAME, factory_status_pb2, generate


def test_checked_in_stubs_match_a_fresh_generation() -> None:
    assert generate.differences() == [], "stale stubs: run python -m forge_sched.proto.generate"


def test_check_mode_passes_on_the_checked_in_stubs() -> None:
    assert generate.main(["--check"]) == 0


def test_a_hand_edited_or_missing_stub_is_reported(tmp_path) -> None:
    for name in generate.generated_names():
        (tmp_path / name).write_bytes((generate.PROTO_DIR / name).read_bytes())
    assert generate.differences(tmp_path) == []
    stub = tmp_path / "factory_status_pb2_grpc.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    (tmp_path / "factory_status_pb2.pyi").unlink()
    assert generate.differences(tmp_path) == ["factory_status_pb2.pyi", "factory_status_pb2_grpc.py"]


def test_the_descriptor_is_the_contracts() -> None:
    file = factory_status_pb2.DESCRIPTOR
    assert file.package == "forge.sched.v1"
    service = file.services_by_name["FactoryStatusService"]
    assert service.full_name == SERVICE_NAME
    method = service.methods_by_name["ReportFactoryStatus"]
    assert (method.input_type.name, method.output_type.name) == ("FactoryStatusUpdate", "StatusResponse")
    assert dict(factory_status_pb2.FactoryStatus.items()) == {"UNSPECIFIED": 0, "UP": 1, "DEGRADED": 2, "DOWN": 3}
    assert [f.name for f in file.message_types_by_name["StatusResponse"].fields] == [
        "accepted", "detail", "orders_moved"]
