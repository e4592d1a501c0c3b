#!/usr/bin/env bash
# The README's test command: set-up on a fresh machine, then the default (fast) test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0          # CPU build first: never pull CUDA wheels
python -m pip install -q -e ".[test,playground]"   # playground: the JAX/MJX tasks (CPU jax here)
# MuJoCo's software renderer for the `evaluate --video` test (tests/test_observe.py renders with
# MUJOCO_GL=osmesa; it skips with the reason where libOSMesa is missing and cannot be installed)
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6 >/dev/null) \
        || echo "could not install libosmesa6: the video test will skip"
fi
export MUJOCO_GL="${MUJOCO_GL:-disable}"
ruff check .                               # rule set in pyproject.toml ([tool.ruff.lint])
snakefmt --check Snakefile workflow/       # the workflow's files (tests/test_lint.py: snakemake --lint)
# both cores (pytest-xdist): -n auto is one worker per CPU, at most 4; tests that share a
# module-scoped fixture stay together (tests/conftest.py). `-n 0` as an argument runs in one process.
python -m pytest -q -n auto --maxprocesses 4 --dist loadgroup "$@"
