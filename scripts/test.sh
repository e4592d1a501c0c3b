#!/usr/bin/env bash
# The README's test command: set-up on a fresh machine, then the default (fast) test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0          # CPU build first: never pull CUDA wheels
python -m pip install -q -e ".[test,playground]"   # playground: the JAX/MJX tasks (CPU jax here)
export MUJOCO_GL="${MUJOCO_GL:-disable}"
ruff check .                               # rule set in pyproject.toml ([tool.ruff.lint])
snakefmt --check Snakefile workflow/       # the workflow's files (tests/test_lint.py: snakemake --lint)
python -m pytest -q "$@"
