#!/usr/bin/env bash
# The README's test command: set-up on a fresh machine, then the default (fast) test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0          # CPU build first: never pull CUDA wheels
python -m pip install -q -e ".[test,playground]"   # playground: the JAX/MJX tasks (CPU jax here)
export MUJOCO_GL="${MUJOCO_GL:-disable}"
python -m pytest -q "$@"
