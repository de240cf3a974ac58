#!/usr/bin/env bash
# The whole test suite from a fresh clone: `bash tests/run.sh` (extra args go to pytest).
# Creates .venv if missing, installs the CPU torch wheel and the project with its test extra,
# then ruff (lint + format check) and pytest. Idempotent: a second run only runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c "import torch" 2>/dev/null; then
  pip install -q "torch==2.13.0"   # CPU wheel; an unpinned torch would pull a multi-GB CUDA build
fi
if ! python -c "import nemotron, megatron.core, hydra_plugins.nemotron_runspec" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.nemotron-installed ]; then
  pip install -q -e ".[test]"
  touch .venv/.nemotron-installed
fi
export MLFLOW_DISABLE_TELEMETRY=true
# Lint and format check first (files in scope: [tool.ruff] include in pyproject.toml).
ruff check --quiet . && ruff format --check --quiet . || { echo "ruff: fix the above (ruff check --fix .; ruff format .)"; exit 1; }
exec python -m pytest "$@"
