"""The checked-in stubs are what grpcio-tools generates from sparkplug_b.proto today."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc_tools", reason="grpcio-tools (forge-sparkplug[test]) regenerates the stubs")

from forge_sparkplug.proto import generate, sparkplug_b_pb2


def test_checked_in_stubs_match_a_fresh_generation() -> None:
    assert generate.differences() == [], "stale stubs: run python -m forge_sparkplug.proto.generate"


def test_check_mode_passes_on_the_checked_in_stubs() -> None:
    assert generate.main(["--check"]) == 0


def test_a_hand_edited_stub_is_reported(tmp_path) -> None:
    for name in generate.generated_names():
        (tmp_path / name).write_bytes((generate.PROTO_DIR / name).read_bytes())
    stub = tmp_path / "sparkplug_b_pb2.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    assert generate.differences(tmp_path) == ["sparkplug_b_pb2.py"]


def test_the_metric_fields_are_the_specification_s() -> None:
    """Field numbers of Payload and Metric as chapter 6 of the specification lists them."""
    payload = sparkplug_b_pb2.Payload.DESCRIPTOR
    assert {f.name: f.number for f in payload.fields} == {"timestamp": 1, "metrics": 2, "seq": 3, "uuid": 4, "body": 5}
    metric = payload.nested_types_by_name["Metric"]
    assert {f.name: f.number for f in metric.fields} == {
        "name": 1, "alias": 2, "timestamp": 3, "datatype": 4, "is_historical": 5, "is_transient": 6, "is_null": 7,
        "metadata": 8, "properties": 9, "int_value": 10, "long_value": 11, "float_value": 12, "double_value": 13,
        "boolean_value": 14, "string_value": 15, "bytes_value": 16, "dataset_value": 17, "template_value": 18,
        "extension_value": 19}
    assert sparkplug_b_pb2.DataType.Value("DateTimeArray") == 34
