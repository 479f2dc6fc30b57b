#!/usr/bin/env bash
# The main job: set up, then run the pasta factory reference plant on the embedded profile (one
# process, in-memory bus, SQLite, real clock) with its live view; Ctrl-C stops it with a summary.
#   DURATION=60s bash scripts/demo.sh      run for a bounded time instead
#   bash scripts/demo.sh --simulate 24h --seed 7 --profile chaos   any other forge run options
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# forge validate checks every profile; the distributed one needs the plant's command-signing key,
# which `scripts/servers.sh start` generates. The demo runs the embedded profile: a throwaway key
# lets the check cover the distributed profile too without weakening it.
if [ -z "${PASTA_COMMAND_SECRET:-}" ]; then
  PASTA_COMMAND_SECRET=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
  export PASTA_COMMAND_SECRET
fi
.venv/bin/forge validate examples/pasta_plant
args=("$@")
if [ -n "${DURATION:-}" ]; then
  args+=(--duration "$DURATION")
fi
exec .venv/bin/forge run examples/pasta_plant "${args[@]}"
