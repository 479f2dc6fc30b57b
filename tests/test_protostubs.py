"""forge_core.protostubs: generate, check and report stale stubs for a package's .proto files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("grpc_tools", reason="grpcio-tools regenerates stubs (a test dependency)")

from forge_core.protostubs import ProtoStubs

PROTO = """syntax = "proto3";
package acme.v1;
message Ping { string who = 1; }
message Pong { bool ok = 1; }
service Echo { rpc Call(Ping) returns (Pong); }
"""


@pytest.fixture
def stubs(tmp_path: Path) -> ProtoStubs:
    folder = tmp_path / "src" / "acme_plugin" / "proto"
    folder.mkdir(parents=True)
    for package in (folder, folder.parent):
        (package / "__init__.py").write_text("")
    (folder / "echo.proto").write_text(PROTO)
    return ProtoStubs(folder, ("echo.proto",), grpc=True)


def test_the_package_and_include_root_come_from_the_folder(stubs: ProtoStubs) -> None:
    assert stubs.module == "acme_plugin.proto"
    assert stubs.src == stubs.proto_dir.parent.parent
    assert stubs.generated_names() == ["echo_pb2.py", "echo_pb2.pyi", "echo_pb2_grpc.py"]
    assert ProtoStubs(stubs.proto_dir, ("echo.proto",)).generated_names() == ["echo_pb2.py", "echo_pb2.pyi"]


def test_generate_then_check_then_a_hand_edit_is_stale(stubs: ProtoStubs, capsys) -> None:
    assert stubs.differences() == ["echo_pb2.py", "echo_pb2.pyi", "echo_pb2_grpc.py"]  # none written yet
    assert stubs.main(["--check"]) == 1
    assert "acme_plugin/proto/echo_pb2.py is stale: run python -m acme_plugin.proto.generate" in capsys.readouterr().err
    assert stubs.main([]) == 0
    assert stubs.differences() == [] and stubs.main(["--check"]) == 0
    # the _grpc stub imports its _pb2 absolutely, from the include root
    assert "from acme_plugin.proto import echo_pb2" in (stubs.proto_dir / "echo_pb2_grpc.py").read_text()
    edited = stubs.proto_dir / "echo_pb2.pyi"
    edited.write_text(edited.read_text() + "# by hand\n")
    assert stubs.differences() == ["echo_pb2.pyi"]


def test_a_bad_proto_names_the_package_and_file(stubs: ProtoStubs) -> None:
    (stubs.proto_dir / "echo.proto").write_text("syntax = 'proto3'; message {")
    with pytest.raises(RuntimeError, match=r"acme_plugin.proto: protoc failed on .*echo.proto"):
        stubs.generate(stubs.proto_dir.parent.parent)


def test_unknown_arguments_print_the_usage(stubs: ProtoStubs, capsys) -> None:
    assert stubs.main(["--bogus"]) == 2
    assert "usage: python -m acme_plugin.proto.generate [--check]" in capsys.readouterr().err
