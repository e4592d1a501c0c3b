import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "disable")
ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def cli(*args, check=True, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python -m gorl ...`` in a fresh single-threaded process."""
    e = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL="disable",
             PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    e.update(env or {})
    out = subprocess.run([sys.executable, "-m", "gorl", *map(str, args)], capture_output=True, text=True,
                         env=e, timeout=timeout, cwd=ROOT)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")
    return out


@pytest.fixture
def run_cli():
    return cli
