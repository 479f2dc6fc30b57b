"""Compile Forge's listed modules with mypyc, in place: forge_core.compiler run from the checkout's root
(forge-core and plugins/*). ``--check``, ``--clean``: see docs/compiled.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from forge_core.compiler import main

if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parents[1])  # mypy's configuration and the default projects: the checkout's
    sys.exit(main())
