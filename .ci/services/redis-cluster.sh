#!/usr/bin/env bash
# Starts a 3-master Redis Cluster on 127.0.0.1:7000-7002 for the
# redis-cluster conformance tests. Idempotent: when the ports already answer
# as a healthy cluster it does nothing. No persistence; data lives in memory.
set -euo pipefail

PORTS=(7000 7001 7002)
DIR="${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/sagascope-redis-cluster}"

cluster_ok() {
    redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

if cluster_ok; then
    echo "redis-cluster: already up on ports ${PORTS[*]}"
    exit 0
fi

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server redis-tools >/dev/null
fi

mkdir -p "$DIR"
for p in "${PORTS[@]}"; do
    if redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1; then
        continue
    fi
    mkdir -p "$DIR/$p"
    rm -f "$DIR/$p/nodes.conf"
    redis-server --port "$p" --bind 127.0.0.1 --daemonize yes \
        --cluster-enabled yes --cluster-config-file "$DIR/$p/nodes.conf" \
        --cluster-node-timeout 5000 --dir "$DIR/$p" \
        --save "" --appendonly no --logfile "$DIR/$p/redis.log"
done

for p in "${PORTS[@]}"; do
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
done

# Nodes that answer but are not yet one cluster (fresh start, or a half-made
# cluster from an interrupted run) are reset and joined.
if ! cluster_ok; then
    for p in "${PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$p" flushall >/dev/null 2>&1 || true
        redis-cli -h 127.0.0.1 -p "$p" cluster reset hard >/dev/null 2>&1 || true
    done
    args=()
    for p in "${PORTS[@]}"; do args+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${args[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
fi

for _ in $(seq 100); do
    if cluster_ok; then
        echo "redis-cluster: up on ports ${PORTS[*]}"
        exit 0
    fi
    sleep 0.2
done
echo "redis-cluster: cluster did not reach state ok; see $DIR/*/redis.log" >&2
exit 1
