"""What produced a run: versions, commit, machine, seed, device, wall time."""
from __future__ import annotations

import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("gorl-bench", "torch", "numpy", "gymnasium", "dm_control", "mujoco", "shimmy",
            "rliable", "pandas", "snakemake")


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def provenance(run, wall_time: float) -> dict:
    import torch
    return {
        "algorithm": run.algo, "task": run.task, "seed": run.seed, "preset": run.preset,
        "device": str(run.device), "torch_threads": torch.get_num_threads(),
        "wall_time_s": round(wall_time, 3), "git_commit": git_commit(), "versions": versions(),
        "python": sys.version.split()[0], "platform": platform.platform(), "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "matmul_precision": {"setting": (run.config.get("hyperparameters") or {}).get("matmul_precision", "default"),
                             **matmul_precision()},
    }


MATMUL_PRECISIONS = ("default", "high", "highest")
"""``matmul_precision``: float32 matmuls as the backend likes ('default': torch 'highest', i.e.
no TF32, and JAX's own default, which may use TF32/bf16 passes on a GPU), 'high' (TF32 allowed)
or 'highest' (full float32 in torch and JAX; the release's humanoid runs)."""


def set_matmul_precision(precision: str | None) -> dict:
    """Apply ``matmul_precision`` to torch and JAX (JAX only if it is installed), and return what
    was set, for provenance. Called before any network or env is built."""
    import torch
    if precision in (None, "default"):
        return matmul_precision()
    import os
    torch.set_float32_matmul_precision(precision)
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_default_matmul_precision", precision)
    else:  # read by JAX when a Playground task imports it (no JAX import for dm_control runs)
        os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = precision
    return matmul_precision()


def matmul_precision() -> dict:
    """The float32 matmul precision in force: torch's, and JAX's if JAX has been imported."""
    import torch
    out = {"torch": torch.get_float32_matmul_precision()}
    if "jax" in sys.modules:
        out["jax"] = sys.modules["jax"].config.jax_default_matmul_precision or "default"
    elif "JAX_DEFAULT_MATMUL_PRECISION" in __import__("os").environ:
        out["jax"] = __import__("os").environ["JAX_DEFAULT_MATMUL_PRECISION"]
    return out
