#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (venv, packages, servers), ruff, import contracts,
# the type checker, then the tests.
# Tests start and stop their own servers on 127.0.0.1. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --servers
.venv/bin/ruff check .
.venv/bin/lint-imports          # import contracts: .importlinter, docs/architecture.md
.venv/bin/mypy                  # forge_core and every plugin; configuration in pyproject.toml
# The fast suite first, then the failure drills on the three-broker Apache Kafka cluster (marker drills).
.venv/bin/python -m pytest -q --timeout=600 -m "not drills" "$@"
exec .venv/bin/python -m pytest -q --timeout=600 -m drills "$@"
