"""forge_sparkplug's test peer: an independent Sparkplug implementation from PyPI in a venv of its own.

pysparkplug 0.6.1 (Apache-2.0) pins ``paho-mqtt<2``; forge-mqtt runs on paho-mqtt 2, so the two
cannot share an environment. The peer lives in ``~/.cache/forge/sparkplug-peer/pysparkplug-0.6.1``
(``FORGE_SPARKPLUG_PEER`` overrides), built once by ``python -m forge_sparkplug.testing peer``
(scripts/setup.sh --servers runs it) or by the ``pysparkplug_python`` fixture on first use; tests
run it as a separate process talking to the same Mosquitto, which is how an interoperating
implementation meets Forge in a plant anyway. Registered through this distribution's ``pytest11``
entry point.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["PEER_REQUIREMENTS", "peer_python", "pysparkplug_python"]

#: What the peer's venv holds: the independent implementation, pinned.
PEER_REQUIREMENTS = ("pysparkplug==0.6.1", "paho-mqtt==1.6.1")


def _peer_dir() -> Path:
    default = Path.home() / ".cache" / "forge" / "sparkplug-peer" / "pysparkplug-0.6.1"
    return Path(os.environ.get("FORGE_SPARKPLUG_PEER", default))


def peer_python(*, build: bool = True) -> Path | None:
    """The peer venv's python (built if missing and ``build``); None if it cannot be had."""
    venv = _peer_dir()
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python
    if not build:
        return None
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"forge_sparkplug: cannot build the peer venv in {venv}: {exc} {detail.decode(errors='replace')[-500:]}",
              file=sys.stderr)
        return None
    ready.write_text(" ".join(PEER_REQUIREMENTS))
    return python


@pytest.fixture(scope="session")
def pysparkplug_python() -> Path:
    """The python of a venv with pysparkplug 0.6.1 (skips the test if it cannot be built)."""
    python = peer_python()
    if python is None:
        pytest.skip("the pysparkplug peer venv could not be built (no PyPI?); see forge_sparkplug.testing")
    return python


if __name__ == "__main__":
    if sys.argv[1:] != ["peer"]:
        print("usage: python -m forge_sparkplug.testing peer", file=sys.stderr)
        raise SystemExit(2)
    built = peer_python()
    print(built if built is not None else "failed")
    raise SystemExit(0 if built is not None else 1)
