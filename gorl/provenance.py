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
    }
