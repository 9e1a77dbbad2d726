#!/usr/bin/env bash
# Tools the tests drive: tmux (the TUI end-to-end tests) and python3 (the
# sagaz interop and SQLite interop tests). Installed only when missing.
set -euo pipefail
missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "tools: tmux $(tmux -V | cut -d' ' -f2), $(python3 --version)"
