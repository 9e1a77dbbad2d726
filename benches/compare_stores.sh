#!/usr/bin/env bash
# Side by side, same server, one run: sagascope's store operations against
# sagaz 1.5.0's storage classes.
#
#   benches/compare_stores.sh redis     # Redis on 127.0.0.1:6379
#   benches/compare_stores.sh postgres  # PostgreSQL on 127.0.0.1:5432, db test
#
# Uses the release binary (cargo build --release) unless SAGASCOPE_BIN is
# set, and the sagaz venv from .ci/services/sagaz.sh unless SAGAZ_PYTHON is.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: compare_stores.sh redis|postgres}
ops=${OPS:-300}
bin=${SAGASCOPE_BIN:-target/release/sagascope}
py=${SAGAZ_PYTHON:-target/ci/sagaz-venv/bin/python}
tag=$(date +%s)
case "$backend" in
  redis)
    cfg='{"backend":"redis","url":"redis://127.0.0.1:6379","prefix":"bench'$tag':snapshot:","compress":true}'
    url="redis://127.0.0.1:6379?prefix=bench$tag:snapshot:&compression=zstd" ;;
  postgres)
    cfg='{"backend":"postgres","dsn":"postgresql://postgres@127.0.0.1:5432/test","schema":"bench'$tag'"}'
    url="postgres://postgres@127.0.0.1:5432/test?schema=bench$tag" ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
out=target/bench-results; mkdir -p "$out"
"$py" benches/sagaz_store_bench.py "$cfg" --ops "$ops" > "$out/sagaz-$backend.json"
"$bin" --store "$url" bench store --ops "$ops" --json > "$out/sagascope-$backend.json"
python3 - "$out/sagaz-$backend.json" "$out/sagascope-$backend.json" <<'PY'
import json, sys
a = {o["name"]: o for o in json.load(open(sys.argv[1]))["operations"]}
b = {o["name"]: o for o in json.load(open(sys.argv[2]))["operations"]}
print(f"{'operation':<16} {'sagaz ops/s':>12} {'p50 ms':>8} {'p99 ms':>8} | {'sagascope ops/s':>15} {'p50 ms':>8} {'p99 ms':>8} | {'speed-up':>8}")
for name in a:
    x, y = a[name], b[name]
    extra = f"  (sagaz wrong answers: {x['wrong_answers']})" if x.get("wrong_answers") else ""
    print(f"{name:<16} {x['ops_per_sec']:>12.0f} {x['p50_ms']:>8.3f} {x['p99_ms']:>8.3f} | {y['ops_per_sec']:>15.0f} {y['p50_ms']:>8.3f} {y['p99_ms']:>8.3f} | {y['ops_per_sec']/x['ops_per_sec']:>7.1f}x{extra}")
PY
