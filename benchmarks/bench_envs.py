"""Environment stepping rates: raw dm_control vs this project's wrapper vs shimmy, and
how throughput scales with one single-threaded run per core.

    MUJOCO_GL=disable python benchmarks/bench_envs.py [--seconds 3] [--tasks cheetah-run ...]

Columns, per task, all on one core with random actions in [-1, 1]:
  raw       dm_control ``env.step`` in a bare loop (the physical reference)
  ours      ``gorl.envs.make_env`` (flat float32 obs, truncation flag, state save/restore)
  shimmy    ``gym.make("dm_control/<domain>-<task>-v0")`` through shimmy
  vec8      ``gorl.envs.VectorEnv`` with 8 envs stepped in-process (per env step)
  2 procs   aggregate rate of two concurrent single-threaded processes running ``ours``,
            as a multiple of one process alone (the speed-up parallel runs get on 2 cores).

Worker processes: on 2 cores Gymnasium's AsyncVectorEnv gained at most 1.2x (about 300 us per
round trip), while independent processes scale ~2x, so a run steps its envs in-process by
default and parallelism comes from one run per core under Snakemake. ``--sharded N ...``
measures the suite's own shared-memory sharding (``env_workers``) against one process, the
option for many-core machines at the paper's 2048 envs.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

import common  # noqa: F401  (sets MUJOCO_GL)
from gorl.envs import PAPER_TASKS, VectorEnv, make_env


def _rate(step, reset, seconds: float, act_dim: int) -> float:
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (1000, act_dim)).astype(np.float32)
    reset()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i in range(1000):
            if step(acts[i]):
                reset()
        n += 1000
    return n / (time.perf_counter() - t0)


def raw_rate(task: str, seconds: float) -> float:
    from dm_control import suite
    domain, name = task.split("-", 1)
    env = suite.load(domain, name, task_kwargs={"random": 0})
    return _rate(lambda a: env.step(a).last(), env.reset, seconds, env.action_spec().shape[0])


def ours_rate(task: str, seconds: float) -> float:
    env = make_env(task, 0)

    def step(a):
        _, _, te, tr, _ = env.step(a)
        return te or tr
    return _rate(step, lambda: env.reset(seed=0), seconds, env.action_space.shape[0])


def shimmy_rate(task: str, seconds: float) -> float:
    import gymnasium as gym
    import shimmy  # noqa: F401  (registers dm_control/* under Gymnasium 1.x)
    domain, name = task.split("-", 1)
    env = gym.make(f"dm_control/{domain}-{name}-v0")

    def step(a):
        _, _, te, tr, _ = env.step(a)
        return te or tr
    return _rate(step, lambda: env.reset(seed=0), seconds, env.action_space.shape[0])


def vec_rate(task: str, seconds: float, n: int = 8) -> float:
    venv = VectorEnv([lambda s=s: make_env(task, s) for s in range(n)])
    venv.reset(list(range(n)))
    acts = np.random.default_rng(0).uniform(-1, 1, (100, n, venv.action_dim)).astype(np.float32)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for i in range(100):
            venv.step(acts[i])
        steps += 100 * n
    return steps / (time.perf_counter() - t0)


def sharded_rates(task: str, n: int, workers: int, seconds: float) -> tuple[float, float]:
    """(in-process, sharded over ``workers`` processes) env steps/s of ``n`` envs."""
    from gorl.envs.sharded import ShardedVectorEnv
    rates = []
    for make in (lambda: VectorEnv([lambda s=s: make_env(task, s) for s in range(n)]),
                 lambda: ShardedVectorEnv(task, list(range(n)), workers)):
        venv = make()
        venv.reset(list(range(n)))
        acts = np.random.default_rng(0).uniform(-1, 1, (20, n, venv.action_dim)).astype(np.float32)
        venv.step(acts[0])
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for a in acts:
                venv.step(a)
            steps += len(acts) * n
        rates.append(steps / (time.perf_counter() - t0))
        getattr(venv, "close", lambda: None)()
    return rates[0], rates[1]


def _worker(task: str, seconds: float, q) -> None:
    import os
    os.environ["OMP_NUM_THREADS"] = "1"
    q.put(ours_rate(task, seconds))


def parallel_rate(task: str, seconds: float, procs: int) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=_worker, args=(task, seconds, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    rates = [q.get() for _ in ps]
    for p in ps:
        p.join()
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=list(PAPER_TASKS))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--sharded", type=int, nargs="*", metavar="N_ENVS",
                    help="instead: N_ENVS envs in-process vs sharded over --workers processes (gorl.envs.sharded)")
    ap.add_argument("--workers", type=int, default=mp.cpu_count())
    args = ap.parse_args()
    if args.sharded is not None:
        print(f"env steps/s: one process vs sharded over {args.workers} worker processes (shared memory)")
        print(f"{'task':18} {'envs':>6} {'in-process':>11} {'sharded':>9} {'speed-up':>9}")
        for task in args.tasks:
            for n in args.sharded or [256, 2048]:
                one, sharded = sharded_rates(task, n, args.workers, args.seconds)
                print(f"{task:18} {n:6d} {one:11.0f} {sharded:9.0f} {sharded / one:8.2f}x", flush=True)
        return
    print(f"steps/s on one core, {args.seconds:g} s per measurement; 2 procs = two concurrent "
          f"1-thread processes vs one")
    print(f"{'task':18} {'raw':>8} {'ours':>8} {'ours/raw':>9} {'shimmy':>8} {'vec8':>8} "
          f"{'1 proc':>8} {'2 procs':>8} {'speed-up':>9}")
    for task in args.tasks:
        raw, ours = raw_rate(task, args.seconds), ours_rate(task, args.seconds)
        shim, vec = shimmy_rate(task, args.seconds), vec_rate(task, args.seconds)
        one, two = parallel_rate(task, args.seconds, 1), parallel_rate(task, args.seconds, 2)
        print(f"{task:18} {raw:8.0f} {ours:8.0f} {ours / raw:8.2f}x {shim:8.0f} {vec:8.0f} "
              f"{one:8.0f} {two:8.0f} {two / one:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
