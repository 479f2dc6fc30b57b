"""Regenerate the checked-in protobuf stubs from ``sparkplug_b.proto`` (Eclipse Tahu's).

    python -m forge_sparkplug.proto.generate            # rewrite the stubs beside the .proto
    python -m forge_sparkplug.proto.generate --check    # exit 1 if the checked-in stubs differ

How and why stubs are checked in: :mod:`forge_core.protostubs`. The descriptor is registered under
``forge_sparkplug/proto/sparkplug_b.proto``, so it does not clash with another library's
``sparkplug_b.proto``; the stubs need protobuf alone at run time.
"""

from __future__ import annotations

from pathlib import Path

from forge_core.protostubs import ProtoStubs

STUBS = ProtoStubs(Path(__file__).resolve().parent, ("sparkplug_b.proto",))
PROTO_DIR = STUBS.proto_dir
generated_names, generate, differences, main = STUBS.generated_names, STUBS.generate, STUBS.differences, STUBS.main

if __name__ == "__main__":
    raise SystemExit(main())
