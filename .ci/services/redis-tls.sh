#!/usr/bin/env bash
# Starts a TLS-only Redis on 127.0.0.1:6390 with a throwaway self-signed
# certificate, for the rediss:// test. Idempotent.
set -euo pipefail

DIR="${REDIS_TLS_DIR:-${TMPDIR:-/tmp}/sagascope-redis-tls}"
if redis-cli --tls --insecure -h 127.0.0.1 -p 6390 ping >/dev/null 2>&1; then
    echo "redis-tls: already up on 6390"
    exit 0
fi
command -v openssl >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq openssl >/dev/null; }
mkdir -p "$DIR"
if [ ! -s "$DIR/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/key.pem" -out "$DIR/cert.pem" \
        -days 30 -subj "/CN=127.0.0.1" >/dev/null 2>&1
fi
redis-server --port 0 --tls-port 6390 --bind 127.0.0.1 \
    --tls-cert-file "$DIR/cert.pem" --tls-key-file "$DIR/key.pem" --tls-ca-cert-file "$DIR/cert.pem" \
    --tls-auth-clients no --daemonize yes --save "" --appendonly no --logfile "$DIR/redis.log"
for _ in $(seq 50); do
    if redis-cli --tls --insecure -h 127.0.0.1 -p 6390 ping >/dev/null 2>&1; then
        echo "redis-tls: up on 6390"
        exit 0
    fi
    sleep 0.1
done
echo "redis-tls: did not start; see $DIR/redis.log" >&2
exit 1
