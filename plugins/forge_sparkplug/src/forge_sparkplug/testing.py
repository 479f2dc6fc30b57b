"""forge_sparkplug's test peer: an independent Sparkplug implementation from PyPI in a venv of its own.

pysparkplug 0.6.1 (Apache-2.0) pins ``paho-mqtt<2``; forge-mqtt runs on paho-mqtt 2, so the two
cannot share an environment. The peer lives in ``~/.cache/forge/sparkplug-peer/pysparkplug-0.6.1``
(``FORGE_SPARKPLUG_PEER`` overrides), built once by ``python -m forge_sparkplug.testing peer``
(scripts/setup.sh --servers runs it, so CI has it before the tests) or by the ``pysparkplug_python``
fixture on first use, which fails (never skips) when it cannot be built. Tests run it as a separate
process talking to the same Mosquitto, which is how an interoperating implementation meets Forge in
a plant anyway. Registered through this distribution's ``pytest11``
entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["PEER_REQUIREMENTS", "PeerUnavailable", "build_peer", "peer_python", "pysparkplug_python"]

#: What the peer's venv holds: the independent implementation, pinned.
PEER_REQUIREMENTS = ("pysparkplug==0.6.1", "paho-mqtt==1.6.1")


def _peer_dir() -> Path:
    default = Path.home() / ".cache" / "forge" / "sparkplug-peer" / "pysparkplug-0.6.1"
    return Path(os.environ.get("FORGE_SPARKPLUG_PEER", default))


class PeerUnavailable(RuntimeError):
    """The peer's venv could not be built (the message says where and pip's last words)."""


def build_peer() -> Path:
    """The peer venv's python, built if missing (idempotent: a venv marked ``.ready`` is reused); raises
    :class:`PeerUnavailable` if it cannot be built (no PyPI, no ``venv`` module)."""
    venv = _peer_dir()
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip()[-800:]
        raise PeerUnavailable(f"forge_sparkplug: cannot build the pysparkplug peer venv in {venv} "
                              f"({' '.join(PEER_REQUIREMENTS)} from PyPI): {exc}" + (f"\n{detail}" if detail else "")
                              ) from None
    ready.write_text(" ".join(PEER_REQUIREMENTS))
    return python


def peer_python(*, build: bool = True) -> Path | None:
    """The peer venv's python (built if missing and ``build``); None if it cannot be had (the reason on stderr)."""
    venv = _peer_dir()
    if not build:
        python = venv / "bin" / "python"
        return python if (venv / ".ready").exists() and python.exists() else None
    try:
        return build_peer()
    except PeerUnavailable as exc:
        print(exc, file=sys.stderr)
        return None


@pytest.fixture(scope="session")
def pysparkplug_python() -> Path:
    """The python of a venv with pysparkplug 0.6.1, built on first use if ``scripts/setup.sh --servers`` did not.
    If it cannot be built the test fails, naming the cause: it never skips, so CI cannot pass without it."""
    try:
        return build_peer()
    except PeerUnavailable as exc:
        reason = str(exc)
    pytest.fail(f"{reason}\nBuild it where PyPI is reachable (python -m forge_sparkplug.testing peer) or point "
                "FORGE_SPARKPLUG_PEER at a venv holding those packages (marked by a .ready file).", pytrace=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["peer"]:
        print("usage: python -m forge_sparkplug.testing peer", file=sys.stderr)
        raise SystemExit(2)
    try:
        print(build_peer())
    except PeerUnavailable as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
