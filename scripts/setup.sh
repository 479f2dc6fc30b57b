#!/usr/bin/env bash
# Set up everything Forge needs on this machine: a virtualenv with forge-core, every plugin
# under plugins/ and every example plant package under examples/ (editable), with FORGE_COMPILE=1 their listed modules compiled with mypyc
# (docs/compiled.md), and, with --servers, the Debian servers the tests start themselves
# (PostgreSQL, Redis, Mosquitto, a Java 17 runtime and Maven) and Apache Kafka's broker jars from Maven Central. Safe to run again: it only does what is missing.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

want_servers=0
[ "${1:-}" = "--servers" ] && want_servers=1

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "forge needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ "$want_servers" = 1 ]; then
  missing=()
  command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  # benchmarks/bench_mqtt.py's broker limit: the Mosquitto C clients (mosquitto_pub -l, mosquitto_sub -C)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  # benchmarks/bench_industry40_rest.py's max-throughput client (C; its Lua script gives each request its own key)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  # benchmarks/bench_startup.py times whole commands with hyperfine
  command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
  # Apache Kafka (forge_kafka.cluster.KafkaCluster): a Java 17+ runtime, and Maven to fetch the broker's jars.
  java_major=$( (java -version 2>&1 || true) | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [ "${java_major:-0}" -ge 17 ] 2>/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  # The dashboard's browser test (examples/pasta_plant/tests/test_dashboard.py): headless Chromium, driven by
  # Playwright's Python package (the test extra) through Debian's /usr/bin/chromium; no `playwright install`.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "installing ${missing[*]} (Debian packages)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "the tests need these Debian packages: ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.forge-installed
inputs=$(cat pyproject.toml plugins/*/pyproject.toml examples/*/pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$inputs" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  args=(-e ".[test,otlp,http,grpc,bench]")   # bench: the peer (FastStream) the benchmarks measure beside Forge
  for package in plugins/*/ examples/*/; do
    package=${package%/}
    [ -f "$package/pyproject.toml" ] || continue
    # with the package's own test extra where it declares one (forge_sched: grpcio-tools, types-protobuf)
    if grep -q '^test = ' "$package/pyproject.toml"; then args+=(-e "$package[test]"); else args+=(-e "$package"); fi
  done
  .venv/bin/python -m pip install -q "${args[@]}"
  echo "$inputs" > "$stamp"
fi

# FORGE_COMPILE=1: compile the modules the pyproject.toml files list under [tool.forge.compile] with mypyc, in
# place (docs/compiled.md); again only when a listed module or one it imports changes. Off by default: compiled,
# they ran fewer instructions but no less CPU time on this machine (stop 43, docs/performance.md).
# FORGE_PURE=1 removes compiled modules left by an earlier FORGE_COMPILE=1.
if [ "${FORGE_PURE:-0}" = 1 ]; then
  .venv/bin/python scripts/compile.py --clean
elif [ "${FORGE_COMPILE:-0}" = 1 ] && ! .venv/bin/python scripts/compile.py; then
  echo "compiling Forge's modules failed (above); without FORGE_COMPILE=1 the set-up is pure Python" >&2
  exit 1
fi

if [ "$want_servers" = 1 ]; then
  # Apache Kafka's broker jars from Maven Central, once (cached in ~/.cache/forge/kafka-<version>/).
  .venv/bin/python -m forge_kafka.cluster fetch >/dev/null
  # forge_sparkplug's interop peer, pysparkplug 0.6.1, in a venv of its own (it pins paho-mqtt<2), once
  # (cached in ~/.cache/forge/sparkplug-peer/; FORGE_SPARKPLUG_PEER overrides); fails here, not in the tests.
  .venv/bin/python -m forge_sparkplug.testing peer >/dev/null
  # oee_line's TimescaleDB test server (scripts/timescale: PGlite with TimescaleDB, npm packages pinned in its
  # package-lock.json), again when the lock changes; without Node.js its tests skip (fail under CI).
  if command -v npm >/dev/null 2>&1 && \
     [ ! scripts/timescale/node_modules/.package-lock.json -nt scripts/timescale/package-lock.json ]; then
    npm ci --prefix scripts/timescale --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
