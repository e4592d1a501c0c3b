"""Shared pieces of the benchmark scripts (they print figures; nothing here is a test)."""
from __future__ import annotations

import importlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from gorl import registry
from gorl.config import build_config
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "disable")


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_trainer(name: str, task: str, preset: str, tmp: Path, **overrides) -> OnPolicyTrainer:
    """The shared trainer of a single-trainer algorithm (ppo, fpo, dppo, or a plug-in
    whose module defines ``make_agent(cfg, obs_dim, act_dim)``)."""
    algo = registry.get(name)
    cfg = build_config(algo.config_cls, algo.presets_file, preset, task, overrides)
    make_agent = importlib.import_module(algo.train.__module__).make_agent
    torch.manual_seed(0)
    run = Run(algo=name, task=task, seed=0, preset=preset, dir=tmp / name, config={}, quiet=True)
    run.dir.mkdir(parents=True, exist_ok=True)
    return OnPolicyTrainer(cfg, run, make_agent(cfg, *run.env_dims()))


def best_of(fn, rounds: int = 7, calls: int = 500, warmup: int = 100) -> float:
    """Seconds per call of ``fn()``: the best of ``rounds`` means over ``calls`` calls, so a
    background hiccup on a shared machine does not count."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def breakdown(trainer: OnPolicyTrainer, iterations: int, warmup: int = 1) -> dict:
    """Seconds per 1k env steps of env stepping, policy inference and update."""
    trainer.sync_timing = True  # on a GPU: time the work, not the launches
    for _ in range(warmup):
        trainer.update(trainer.collect())
    trainer.timing = dict.fromkeys(trainer.timing, 0.0)
    t_update = 0.0
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(iterations):
        batch = trainer.collect()
        sync()
        t1 = time.perf_counter()
        trainer.update(batch)
        sync()
        t_update += time.perf_counter() - t1
    wall = time.perf_counter() - t0
    steps = iterations * trainer.cfg.steps_per_iteration
    k = 1000.0 / steps
    return {"env": trainer.timing["env"] * k, "inference": trainer.timing["inference"] * k,
            "update": t_update * k, "total": wall * k, "steps": steps, "sps": steps / wall}


def gorl_bench(*args: str, threads: int = 1, **kw) -> subprocess.Popen:
    """Start ``python -m gorl ...`` single-threaded (one run per core, as under Snakemake)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MUJOCO_GL="disable")
    return subprocess.Popen([sys.executable, "-m", "gorl", *args], env=env, cwd=ROOT, **kw)


def train_runs(runs: list[tuple[Path, list[str]]], jobs: int = 2) -> None:
    """Train every run whose directory has no status yet, ``jobs`` single-threaded runs at a
    time; ``runs`` = (run directory, ``gorl-bench train`` arguments without ``--out``)."""
    from gorl import rundir
    todo = [(out, argv) for out, argv in runs if not (out / rundir.STATUS).exists()]
    running: list = []
    while todo or running:
        while todo and len(running) < jobs:
            out, argv = todo.pop(0)
            running.append(gorl_bench("train", *argv, "--quiet", "--out", str(out), stdout=subprocess.DEVNULL))
        time.sleep(0.5)
        running = [p for p in running if p.poll() is None]
