"""Checked-in protobuf/gRPC stubs, regenerated and checked against their ``.proto`` files.

A plugin that speaks protobuf keeps its ``.proto`` and the stubs protoc writes from it side by side
in one package folder, and declares them once::

    # forge_sched/proto/generate.py
    STUBS = ProtoStubs(Path(__file__).resolve().parent, ("factory_status.proto",), grpc=True)
    if __name__ == "__main__":
        raise SystemExit(STUBS.main())

``python -m <package>.generate`` rewrites the stubs, ``--check`` exits 1 when they are stale, and a
test asserts ``STUBS.differences() == []``. Stubs are checked in rather than generated at build time:
the plugin installs (editable or wheel) without grpcio-tools or a build hook, ruff, mypy and gRPC
reflection see the same modules at rest and at run time. grpcio-tools is a test/dev dependency only,
imported when stubs are generated.

The .proto is compiled with the package's ``src/`` folder as the include root, so the descriptor is
registered under ``<package path>/<name>.proto`` (no clash with another library's copy of a common
file such as ``sparkplug_b.proto``) and a ``_pb2_grpc`` stub imports its ``_pb2`` absolutely.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProtoStubs:
    """The ``.proto`` files of one package folder and the stubs generated from them."""

    proto_dir: Path
    protos: tuple[str, ...]
    grpc: bool = False  # also the ``_pb2_grpc.py`` service stubs

    @property
    def src(self) -> Path:
        """The include root: the folder holding the top-level package."""
        package_depth = len(self.module.split("."))
        return self.proto_dir.parents[package_depth - 1]

    @property
    def module(self) -> str:
        """The dotted package of ``proto_dir`` (``forge_sched.proto``), from its ``__init__.py`` files."""
        parts: list[str] = []
        folder = self.proto_dir
        while (folder / "__init__.py").is_file():
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts) or self.proto_dir.name

    @property
    def suffixes(self) -> tuple[str, ...]:
        """What protoc writes per .proto (``--python_out``, ``--pyi_out``, and ``--grpc_python_out``)."""
        return ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py") if self.grpc else ("_pb2.py", "_pb2.pyi")

    def generated_names(self) -> list[str]:
        return [proto.removesuffix(".proto") + suffix for proto in self.protos for suffix in self.suffixes]

    def generate(self, out: Path) -> list[Path]:
        """Compile every .proto into ``out`` (a folder standing for ``src/``); the written stubs, in
        ``generated_names()`` order."""
        protoc = importlib.import_module("grpc_tools.protoc")  # grpcio-tools: a test/dev dependency only
        package = self.proto_dir.relative_to(self.src)
        for proto in self.protos:
            args = ["grpc_tools.protoc", f"-I{self.src}", f"--python_out={out}", f"--pyi_out={out}"]
            if self.grpc:
                args.append(f"--grpc_python_out={out}")
            if protoc.main([*args, str(package / proto)]) != 0:
                raise RuntimeError(f"{self.module}: protoc failed on {self.proto_dir / proto}")
        return [out / package / name for name in self.generated_names()]

    def differences(self, checked_in: Path | None = None) -> list[str]:
        """The stubs in ``checked_in`` (default: beside the .proto) that differ from a fresh generation,
        missing ones included."""
        folder = self.proto_dir if checked_in is None else checked_in
        with tempfile.TemporaryDirectory() as tmp:
            fresh = self.generate(Path(tmp))
            return [path.name for path in fresh
                    if not (folder / path.name).is_file() or (folder / path.name).read_bytes() != path.read_bytes()]

    def main(self, argv: list[str] | None = None) -> int:
        """``python -m <package>.generate [--check]``."""
        args = sys.argv[1:] if argv is None else argv
        command = f"python -m {self.module}.generate"
        if args == ["--check"]:
            stale = self.differences()
            for name in stale:
                print(f"{self.module.replace('.', '/')}/{name} is stale: run {command}", file=sys.stderr)
            return 1 if stale else 0
        if args:
            print(f"usage: {command} [--check]", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            for path in self.generate(Path(tmp)):
                (self.proto_dir / path.name).write_bytes(path.read_bytes())
                print(f"wrote {self.proto_dir / path.name}")
        return 0
