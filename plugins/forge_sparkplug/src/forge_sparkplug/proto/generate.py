"""Regenerate the checked-in protobuf stubs from ``sparkplug_b.proto``.

    python -m forge_sparkplug.proto.generate            # rewrite the stubs beside the .proto
    python -m forge_sparkplug.proto.generate --check    # exit 1 if the checked-in stubs differ

Stubs are checked in rather than generated at build time: the plugin installs (editable or wheel)
without grpcio-tools or a build hook, ruff/mypy see the same modules at rest and at run time, and
``tests/proto/test_generate.py`` fails when the .proto and the stubs disagree. grpcio-tools is a test
dependency only; the stubs need protobuf alone at run time.

The .proto is compiled with ``src/`` as the include root, so the descriptor is registered under the
file name ``forge_sparkplug/proto/sparkplug_b.proto``: no clash with another library's ``sparkplug_b.proto``.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
SRC = PROTO_DIR.parent.parent
PACKAGE = PROTO_DIR.relative_to(SRC)  # forge_sparkplug/proto
PROTOS = ("sparkplug_b.proto",)
#: The files protoc writes per .proto (``--python_out``, ``--pyi_out``).
SUFFIXES = ("_pb2.py", "_pb2.pyi")


def generated_names() -> list[str]:
    return [proto.removesuffix(".proto") + suffix for proto in PROTOS for suffix in SUFFIXES]


def generate(out: Path) -> list[Path]:
    """Compile every .proto of this package into ``out`` (a directory standing for ``src/``);
    returns the written stubs, in ``generated_names()`` order."""
    protoc = importlib.import_module("grpc_tools.protoc")  # grpcio-tools: a test/dev dependency only

    for proto in PROTOS:
        args = ["grpc_tools.protoc", f"-I{SRC}", f"--python_out={out}", f"--pyi_out={out}", str(PACKAGE / proto)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"forge_sparkplug: protoc failed on {PROTO_DIR / proto}")
    return [out / PACKAGE / name for name in generated_names()]


def differences(checked_in: Path = PROTO_DIR) -> list[str]:
    """The stubs in ``checked_in`` that do not match a fresh generation (missing ones included)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        return [path.name for path in fresh
                if not (checked_in / path.name).is_file()
                or (checked_in / path.name).read_bytes() != path.read_bytes()]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        stale = differences()
        for name in stale:
            print(f"forge_sparkplug/proto/{name} is stale: run python -m forge_sparkplug.proto.generate",
                  file=sys.stderr)
        return 1 if stale else 0
    if args:
        print("usage: python -m forge_sparkplug.proto.generate [--check]", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            (PROTO_DIR / path.name).write_bytes(path.read_bytes())
            print(f"wrote {PROTO_DIR / path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
