#!/usr/bin/env bash
# Local servers for a distributed plant: Mosquitto (MQTT), Apache Kafka (KRaft; needs Java 17+ and,
# the first time, Maven to fetch the jars), PostgreSQL, all on 127.0.0.1 on free ports. Production
# points at a managed Kafka cluster, Mosquitto with TLS and a managed PostgreSQL instead (docs/deploy.md).
#
#   scripts/servers.sh start     # start them, print the variables; then: source .forge-servers.env
#   scripts/servers.sh start --kafka-cluster   # three Kafka brokers (RF 3) for failure drills
#   scripts/servers.sh start --tansu           # Tansu (Kafka protocol, memory storage, no JVM) instead
#   scripts/servers.sh start --kafka-cluster --kafka-scram   # SASL/SCRAM + the sensor plant's ACLs (cluster_secure)
#   scripts/servers.sh status
#   scripts/servers.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
STATE=${FORGE_SERVERS_DIR:-.forge-servers}
ENV_FILE=${FORGE_SERVERS_ENV:-.forge-servers.env}
PID_FILE=$STATE/keeper.pid

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

case "${1:-}" in
  start|up)
    shift
    if running; then echo "already running (pid $(cat "$PID_FILE")):"; cat "$ENV_FILE"; exit 0; fi
    mkdir -p "$STATE"; rm -f "$ENV_FILE"
    nohup "$PYTHON" scripts/servers.py up --env-file "$ENV_FILE" "$@" >"$STATE/servers.log" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 1800); do
      [ -s "$ENV_FILE" ] && break
      running || { echo "servers failed to start; $STATE/servers.log:" >&2; tail -30 "$STATE/servers.log" >&2; exit 1; }
      sleep 0.1
    done
    [ -s "$ENV_FILE" ] || { echo "servers not up after 180 s; see $STATE/servers.log" >&2; exit 1; }
    echo "servers up (pid $(cat "$PID_FILE")); export these (or: source $ENV_FILE):"
    cat "$ENV_FILE" ;;
  stop)
    if ! running; then echo "not running"; rm -f "$PID_FILE"; exit 0; fi
    pid=$(cat "$PID_FILE"); kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "pid $pid still running after 30 s" >&2; exit 1; }
    rm -f "$PID_FILE"; echo "stopped" ;;
  status)
    if running; then echo "running (pid $(cat "$PID_FILE")):"; cat "$ENV_FILE"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|up [--kafka-cluster|--tansu] [--kafka-scram] | stop | status" >&2; exit 2 ;;
esac
