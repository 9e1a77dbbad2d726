#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth, db `test`)
# and Redis (127.0.0.1:6379) answer, installing them with apt-get when the
# binaries are missing. Idempotent: servers already answering are left alone.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        apt_install postgresql postgresql-client
    fi
    ver="$(ls /etc/postgresql | sort -V | tail -n1)"
    conf="/etc/postgresql/$ver/main/pg_hba.conf"
    # Tests connect as postgres over TCP without a password.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 100); do port_open 5432 && break; sleep 0.2; done
fi
if ! port_open 5432; then
    echo "postgres: not answering on 127.0.0.1:5432" >&2
    exit 1
fi
if command -v psql >/dev/null; then
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
        psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null
    fi
fi
echo "postgres: up on 127.0.0.1:5432"

if ! port_open 6379; then
    command -v redis-server >/dev/null || apt_install redis-server redis-tools
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
    for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi
if ! port_open 6379; then
    echo "redis: not answering on 127.0.0.1:6379" >&2
    exit 1
fi
echo "redis: up on 127.0.0.1:6379"
