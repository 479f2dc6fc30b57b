"""Regenerate the checked-in gRPC stubs from ``factory_status.proto``.

    python -m forge_sched.proto.generate            # rewrite the stubs beside the .proto
    python -m forge_sched.proto.generate --check    # exit 1 if the checked-in stubs differ

How and why stubs are checked in: :mod:`forge_core.protostubs`. The stubs need grpcio and protobuf
at run time; ``tests/proto/test_generate.py`` fails when the .proto and the stubs disagree.
"""

from __future__ import annotations

from pathlib import Path

from forge_core.protostubs import ProtoStubs

STUBS = ProtoStubs(Path(__file__).resolve().parent, ("factory_status.proto",), grpc=True)
PROTO_DIR = STUBS.proto_dir
generated_names, generate, differences, main = STUBS.generated_names, STUBS.generate, STUBS.differences, STUBS.main

if __name__ == "__main__":
    raise SystemExit(main())
