"""`playground:` (MJX on JAX's backend) vs dm_control: raw env steps/s and PPO training.

    MUJOCO_GL=disable python benchmarks/bench_playground.py                 # all of it, CPU
    python benchmarks/bench_playground.py raw --envs 32 256 --tasks CartpoleBalance CheetahRun
    python benchmarks/bench_playground.py ppo --preset small --iterations 3

raw: env steps/s with random actions (drawn on the host, as the trainer's actions arrive
     through DLPack), through the suite's own env sets (``gorl.envs.make_envs``): the
     batched JAX state vs dm_control stepped in-process; compile time is reported
     separately (``compile s``: the first reset + step, from the persistent cache when warm).
     Contact tasks step slowly under MJX on a CPU: they get ``--contact-steps`` steps.
ppo: PPO on cartpole-balance vs playground:CartpoleBalance with the same preset: env steps/s
     over ``--iterations`` iterations after one warm-up iteration (which compiles), with the
     per-1k-step breakdown (env, inference, update).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import common  # noqa: F401  (sets MUJOCO_GL)
from common import breakdown, make_trainer
from gorl.envs import make_envs
from gorl.envs.playground import CPU_FRIENDLY
from gorl.envs.names import SUITE_NAMES

TASKS = ("CartpoleBalance", "CheetahRun", "FingerSpin", "FingerTurnHard", "FishSwim", "HopperStand", "WalkerWalk")


def rate(task: str, n: int, steps: int) -> tuple[float, float]:
    """(env steps/s, seconds to build, reset and take the first step)."""
    t0 = time.perf_counter()
    envs = make_envs(task, list(range(n)))
    acts = torch.rand(steps + 1, n, envs.action_dim) * 2 - 1
    envs.step(acts[0])[0].sum().item()
    t1 = time.perf_counter()
    for i in range(steps):
        out = envs.step(acts[i + 1])
    out[0].sum().item()  # wait for the device
    t2 = time.perf_counter()
    close = getattr(envs, "close", None)
    if close:
        close()
    return n * steps / (t2 - t1), t1 - t0


def raw(args) -> None:
    print(f"env steps/s, random actions; playground = MJX (impl='jax') on JAX's "
          f"{__import__('jax').default_backend()} backend, dm_control in-process on one core")
    print(f"{'task':18s} {'envs':>5s} {'dm_control':>11s} {'playground':>11s} {'ratio':>7s} {'compile s':>10s} steps")
    for name in args.tasks:
        for n in args.envs:
            steps = args.steps if name in CPU_FRIENDLY else args.contact_steps
            dmc, _ = rate(SUITE_NAMES[name], n, max(1, min(steps, 20_000 // n)))
            pg, compile_s = rate(f"playground:{name}", n, steps)
            print(f"{name:18s} {n:5d} {dmc:11.0f} {pg:11.0f} {pg / dmc:6.2f}x {compile_s:10.1f} {steps}", flush=True)


def ppo(args) -> None:
    print(f"PPO `{args.preset}` preset, {args.iterations} iterations after one warm-up iteration; "
          "seconds per 1k env steps")
    print(f"{'task':28s} {'sps':>8s} {'env':>7s} {'infer':>7s} {'update':>7s} {'total':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for task in ("cartpole-balance", "playground:CartpoleBalance"):
            trainer = make_trainer("ppo", task, args.preset, Path(tmp), device="cpu")
            b = breakdown(trainer, args.iterations)
            print(f"{task:28s} {b['sps']:8.0f} {b['env']:7.3f} {b['inference']:7.3f} {b['update']:7.3f} "
                  f"{b['total']:7.3f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="?", choices=("raw", "ppo", "all"), default="all")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--envs", nargs="+", type=int, default=[32, 256])
    p.add_argument("--steps", type=int, default=500, help="steps per measurement (contact-free tasks)")
    p.add_argument("--contact-steps", type=int, default=5, help="steps per measurement (contact tasks)")
    p.add_argument("--preset", default="small")
    p.add_argument("--iterations", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.what in ("raw", "all"):
        raw(args)
    if args.what in ("ppo", "all"):
        ppo(args)


if __name__ == "__main__":
    main()
