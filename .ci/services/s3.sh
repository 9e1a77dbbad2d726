#!/usr/bin/env bash
# Starts an S3-compatible server (moto in server mode, from PyPI) on
# 127.0.0.1:9000 for the S3 store tests, unless something already answers
# there. Idempotent: running it twice leaves one server.
#
# Tests use AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test, region
# us-east-1, path-style addressing, and create their own buckets.
set -euo pipefail

HOST=127.0.0.1
PORT="${SAGASCOPE_S3_PORT:-9000}"
CACHE="${SAGASCOPE_CI_CACHE:-$HOME/.cache/sagascope-ci}"
VENV="$CACHE/venv"
LOG="$CACHE/moto-$PORT.log"
MOTO_SPEC="${MOTO_SPEC:-moto[server]==5.*}"

answers() {
  curl -s -o /dev/null -m 2 "http://$HOST:$PORT/" 
}

if answers; then
  echo "s3: something already answers at http://$HOST:$PORT"
  exit 0
fi

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/moto_server" ]; then
  echo "s3: installing $MOTO_SPEC into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "$MOTO_SPEC"
fi

echo "s3: starting moto_server on $HOST:$PORT (log: $LOG)"
nohup "$VENV/bin/moto_server" -H "$HOST" -p "$PORT" >"$LOG" 2>&1 &
echo $! >"$CACHE/moto-$PORT.pid"

for _ in $(seq 1 60); do
  if answers; then
    echo "s3: moto answers at http://$HOST:$PORT ($("$VENV/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p'))"
    exit 0
  fi
  sleep 0.5
done
echo "s3: moto did not answer within 30s; see $LOG" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
