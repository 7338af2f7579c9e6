#!/usr/bin/env bash
# Create .venv and install gridmap into it.
#   bash scripts/setup.sh        runtime only (main job, CLI, web app)
#   bash scripts/setup.sh dev    plus test and development tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  rm -rf .venv
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    # Debian ships venv in a separate package (python3-venv).
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      "$PY" -m pip install --user -q virtualenv && "$PY" -m virtualenv -q .venv
    fi
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ "${1:-}" = "dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
