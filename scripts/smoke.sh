#!/usr/bin/env bash
# The README's main command: set-up on a fresh machine, then the smoke pipeline
# (all algorithms x 2 tasks x 2 seeds at tiny budgets, rliable analysis, figures).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0          # CPU build first: never pull CUDA wheels
python -m pip install -q -e .
export MUJOCO_GL="${MUJOCO_GL:-disable}"
snakemake --cores "${CORES:-2}" "$@"
