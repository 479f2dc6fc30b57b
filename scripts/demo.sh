#!/usr/bin/env bash
# The main job: set up, scaffold a demo plant with `forge new plant`, and run it for a bounded
# time on the embedded profile (one process, in-memory bus, SQLite), showing its messages flow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p .forge-demo
if [ ! -d .forge-demo/bakery ]; then
  .venv/bin/forge new plant bakery --dir .forge-demo
fi
.venv/bin/forge validate .forge-demo/bakery
exec .venv/bin/forge run .forge-demo/bakery --duration "${DURATION:-10s}"
