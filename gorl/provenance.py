"""What produced a run: versions, commit, machine, seed, device, wall time."""
from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("gorl-bench", "torch", "numpy", "gymnasium", "dm_control", "mujoco", "shimmy",
            "rliable", "pandas", "snakemake")


def git_commit(here: Path | None = None) -> str | None:
    """The commit of the checkout this package runs from (``here``: another directory of a
    checkout), with ``-dirty-<12 hex>`` where tracked files differ from it: the SHA-256 of
    ``git diff HEAD``, so two attempts of a run under different uncommitted edits differ too.
    None outside a git checkout."""
    here = Path(__file__).resolve().parent if here is None else Path(here)
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if not dirty:
            return out.stdout.strip()
        diff = subprocess.run(["git", "-C", str(here), "diff", "--no-color", "--no-ext-diff", "HEAD"],
                              capture_output=True, timeout=30).stdout
        return f"{out.stdout.strip()}-dirty-{hashlib.sha256(diff).hexdigest()[:12]}"
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


ATTEMPT_CODE = ("git_commit", "versions", "python")
"""What an attempt records of the code that ran it; a resume under different values says so."""


def attempt(env_step: int, started: float, device) -> dict:
    """One process's share of a run (the first start, or a resume from a checkpoint): the env step
    it started from, when (``started``: a ``time.time()``) and where, and the code that ran it
    (:data:`ATTEMPT_CODE`)."""
    import datetime
    when = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds")
    return {"env_step": int(env_step), "started": when, "host": socket.gethostname(), "device": str(device),
            "git_commit": git_commit(), "versions": versions(), "python": sys.version.split()[0]}


def code_changes(before: dict, now: dict) -> list[str]:
    """How the code of attempt ``now`` differs from attempt ``before``'s: 'git_commit A -> B',
    'torch 2.13.0 -> 2.14.0', ... (empty: the same code)."""
    out = []
    for key in ATTEMPT_CODE:
        a, b = before.get(key), now.get(key)
        if key == "versions" and isinstance(a, dict) and isinstance(b, dict):
            out += [f"{p} {a.get(p)} -> {b.get(p)}" for p in sorted(a.keys() | b.keys()) if a.get(p) != b.get(p)]
        elif a != b:
            out.append(f"{key} {a} -> {b}")
    return out


def device_changes(before: dict, now: dict) -> list[str]:
    """'device cuda:0 -> cpu' where attempt ``now`` trains on another kind of device than attempt
    ``before`` (``device: auto`` resumed on a machine with or without a GPU): the numbers then
    differ from a run on one device (other kernels, the CUDA generator's draws instead of the CPU's).
    Another GPU or host of the same kind is not a change here. Empty: the same kind."""
    a, b = before.get("device"), now.get("device")
    if a is None or b is None or str(a).split(":")[0] == str(b).split(":")[0]:
        return []
    return [f"device {a} -> {b}"]


def attempt_changes(before: dict, now: dict) -> dict[str, list[str]]:
    """What differs from attempt ``before`` in attempt ``now`` that can change a run's numbers:
    ``code_changes`` (:func:`code_changes`) and ``device_changes`` (:func:`device_changes`)."""
    return {"code_changes": code_changes(before, now), "device_changes": device_changes(before, now)}


def attempts_summary(prov: dict) -> dict:
    """From an ended run's provenance.json: how many processes trained it (``attempts``: its first
    start and each resume; None where the file does not say), how the code changed between them
    (``code_changes``: empty for one code) and the kind of device (``device_changes``)."""
    attempts = prov.get("attempts")
    if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
        return {"attempts": None, "code_changes": [], "device_changes": []}
    out = {"attempts": len(attempts), "code_changes": [], "device_changes": []}
    for a, b in zip(attempts, attempts[1:]):
        for kind, changes in attempt_changes(a, b).items():
            out[kind] += changes
    return out


def provenance(run, wall_time: float) -> dict:
    import torch
    hp = run.config.get("hyperparameters") or {}
    attempts = run.attempts()  # the last is this process's: its commit and versions are the run's
    return {
        "algorithm": run.algo, "task": run.task, "seed": run.seed, "preset": run.preset,
        "device": str(run.device), "torch_threads": torch.get_num_threads(),
        "wall_time_s": round(wall_time, 3), "git_commit": attempts[-1]["git_commit"],
        "versions": attempts[-1]["versions"],
        "python": sys.version.split()[0], "platform": platform.platform(), "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "matmul_precision": {"setting": hp.get("matmul_precision", "auto"),
                             **matmul_precision()},
        # the rollout key and the path the run took ('auto' takes the scan where it can); both
        # null for a plug-in trainer that has neither
        "rollout": {"setting": hp.get("rollout"), "used": run.rollout},
        "compile_update": compile_update(hp.get("compile_update", False),
                                         run.device, hp.get("cuda_graph")),
        # JAX's GPU memory settings in the run's environment (the pipeline's runs_per_gpu sets them)
        "jax_memory": {k: os.environ[k] for k in JAX_MEMORY_ENV if k in os.environ},
        "memory": peak_memory(run.device),
        # every process that trained the run: the first start, then each resume from a checkpoint
        "attempts": attempts,
    }


def peak_memory(device) -> dict[str, float | None]:
    """The peak memory of this process, for sizing a cluster job's ``mem_mb`` (of the attempt that
    finished the run, for a resumed one): resident set size (MiB), the same summed over its live
    child processes (sharded env workers, with multiprocessing's resource tracker; 0 without them,
    None where /proc cannot tell), and, on CUDA, what torch's allocator held at most (JAX's GPU
    memory is JAX's own pool, see ``jax_memory``). A job needs about the first two together."""
    import torch
    cuda = None
    if str(device).startswith("cuda") and torch.cuda.is_available():
        cuda = round(torch.cuda.max_memory_reserved(torch.device(device)) / 2**20, 1)
    return {"peak_rss_mib": round(peak_rss_mib(), 1), "peak_rss_children_mib": children_peak_rss_mib(),
            "peak_cuda_mib": cuda}


def peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB."""
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 1024)


def children_peak_rss_mib() -> float | None:
    """Sum of the peak resident set sizes (``VmHWM``) of this process's live child processes, MiB;
    None where /proc does not list a process's children (not Linux)."""
    from pathlib import Path
    try:
        pids = {pid for task in Path(f"/proc/{os.getpid()}/task").iterdir()
                for pid in (task / "children").read_text().split()}
    except OSError:
        return None
    kib = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # ended since it was listed
            continue
        kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return round(kib / 1024, 1)


JAX_MEMORY_ENV = ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE",
                  "XLA_PYTHON_CLIENT_ALLOCATOR")


MATMUL_PRECISIONS = ("auto", "fp32", "tf32")
"""``matmul_precision``: float32 matmuls of torch and JAX, 'fp32' (full float32; the release's
humanoid runs say 'highest'), 'tf32' (TensorFloat-32 inputs on GPUs that have it; a CPU computes
fp32 either way) or 'auto': fp32 on a CPU, tf32 on CUDA, which is what the reference stack ran
(JAX's default precision makes an f32 matmul on an A100/H100 a TF32 one: jax-ml/jax#18934,
#24909; Brax/Playground leave it there. Measured on an H200 with jax 0.11.2, 2026-12-04: JAX's
default f32 matmul has TF32's relative error, 3.3e-4, against 8.9e-7 at 'float32';
docs/benchmarks.md, session 23)."""


def set_matmul_precision(value: str | None, device) -> str:
    """Apply ``matmul_precision`` to torch and (on CUDA) JAX in this process before any network or
    env is built; returns the precision in force ('fp32' or 'tf32'), stated in provenance.json."""
    import os

    import torch
    value = value or "auto"
    if value not in MATMUL_PRECISIONS:
        raise ValueError(f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {value!r}")
    cuda = torch.device(device).type == "cuda"
    if value == "auto":
        value = "tf32" if cuda else "fp32"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = value == "tf32"
    torch.set_float32_matmul_precision("high" if value == "tf32" else "highest")
    if cuda:  # a CPU computes fp32 at JAX's default: left alone, so nothing compiled recompiles
        jax_value = "tensorfloat32" if value == "tf32" else "float32"
        if "jax" in sys.modules:
            sys.modules["jax"].config.update("jax_default_matmul_precision", jax_value)
        else:  # read by JAX when a playground: task imports it
            os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = jax_value
    return value


def compile_update(setting: bool, device, cuda_graph: str | None = None) -> dict:
    """How the update's minibatch step (and GoRL's decoder-fit step) ran (``compile_update``): eager, or
    torch.compile's mode; and on CUDA what one CUDA graph of the update held (``cuda_graph``; a
    failed capture of an epoch is said in the run's log). Null where the run has no such key."""
    import torch
    cuda = torch.device(device).type == "cuda"
    epoch = cuda_graph == "epoch"
    mode = None
    if setting:
        mode = "reduce-overhead (CUDA graphs)" if cuda and not epoch else "default"
    graphs = None
    if cuda_graph is not None:
        graphs = "an epoch per graph (GoRL: and a fit's validation interval or epoch)" if cuda and epoch else \
            "a minibatch step's graphs" if cuda and setting else "none"
    return {"setting": bool(setting), "torch_compile_mode": mode,
            "cuda_graph": {"setting": cuda_graph, "graphs": graphs}}


def matmul_precision() -> dict:
    """The float32 matmul precision in force: torch's, and JAX's if JAX has been imported."""
    import torch
    out = {"torch": torch.get_float32_matmul_precision()}
    if "jax" in sys.modules:
        out["jax"] = sys.modules["jax"].config.jax_default_matmul_precision or "default"
    elif "JAX_DEFAULT_MATMUL_PRECISION" in __import__("os").environ:
        out["jax"] = __import__("os").environ["JAX_DEFAULT_MATMUL_PRECISION"]
    return out
