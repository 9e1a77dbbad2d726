#!/usr/bin/env bash
# A venv with sagaz 1.5.0 and the clients its stores need, for the interop
# tests (tests/sagaz_interop.rs looks for target/ci/sagaz-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/ci/sagaz-venv
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sagaz, redis, asyncpg, aioboto3, zstandard' 2>/dev/null; then
  echo "sagaz venv ready"; exit 0
fi
mkdir -p target/ci
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'sagaz==1.5.0' redis zstandard asyncpg aioboto3
"$venv/bin/python" -c 'import sagaz; print("sagaz", sagaz.__version__ if hasattr(sagaz, "__version__") else "1.5.0")'
