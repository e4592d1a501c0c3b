"""Our PPO vs Brax PPO on `playground:CartpoleBalance` at the same geometry, on this machine.

    MUJOCO_GL=disable python benchmarks/bench_vs_brax.py                 # 1 core each, ~2-4 minutes
    python benchmarks/bench_vs_brax.py --threads 2 --iterations 5
    python benchmarks/bench_vs_brax.py --only ours --set rollout=step    # one side, any config key
    python benchmarks/bench_vs_brax.py --only rollouts    # our rollout alone: per-step vs scan

Both trainers run the same MJX task (Playground's CartpoleBalance, ``impl='jax'``) at the same
geometry: 256 envs, unroll 30, 8 minibatches of 256 segments, 4 epochs (61,440 env steps per
iteration), actor 32x4, critic 256x5. Each runs in its own fresh process, one after the other,
pinned to the same ``--threads`` cores (``sched_setaffinity``) with torch's and XLA's thread
pools set to that count. Printed: training env steps/s of each, after one warm-up iteration
(which compiles), evaluation excluded on both sides (Brax: env steps over its
``training/walltime``, not its ``training/sps``, which Playground's ``num_resets_per_eval=10``
makes 10x too high, see ``brax()``; ours: collect + update, as ``benchmarks/common.py:breakdown``
times them), and ours / Brax.

On a shared machine the figures move with the neighbours' load: compare the ratio of runs made
back to back, and repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "playground:CartpoleBalance"
GEOMETRY = dict(num_envs=256, unroll_length=30, num_minibatches=8, batch_size=256, num_epochs=4)


def pin(threads: int) -> None:
    """This process on ``threads`` cores, with torch's and XLA's pools sized to match (set
    before jax/torch create their pools)."""
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()
    os.environ.setdefault("MUJOCO_GL", "disable")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def ours(args) -> dict:
    import tempfile

    import torch
    import yaml
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import breakdown, make_trainer
    over = dict(GEOMETRY, device="cpu")
    for kv in args.set:
        k, v = kv.split("=", 1)
        over[k] = yaml.safe_load(v)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trainer = make_trainer("ppo", TASK, "small", Path(tmp), **over)
        b = breakdown(trainer, args.iterations, warmup=1)
        return {"env_steps_per_s": b["sps"], "warmup_and_build_s": time.perf_counter() - t0 - b["total"] *
                b["steps"] / 1000, "steps_per_iteration": trainer.cfg.steps_per_iteration,
                "s_per_1k": {k: round(b[k], 4) for k in ("env", "inference", "update", "total")}}


def rollouts(args) -> dict:
    """Our rollout alone, per-step path vs one JAX program, interleaved in one process (so both
    see the same load): env steps/s of ``collect()``, the best of ``--iterations`` rounds."""
    import tempfile

    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import make_trainer
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {r: make_trainer("ppo", TASK, "small", Path(tmp) / r, **GEOMETRY, device="cpu", rollout=r)
                    for r in ("step", "scan")}
        best = dict.fromkeys(trainers, float("inf"))
        for t in trainers.values():
            t.collect()  # compiles
        for _ in range(args.iterations):
            for r, t in trainers.items():
                t0 = time.perf_counter()
                t.collect()
                best[r] = min(best[r], time.perf_counter() - t0)
        n = next(iter(trainers.values())).cfg.steps_per_iteration
    out = {f"rollout_{r}": n / b for r, b in best.items()}
    out["env_steps_per_s"] = out["rollout_scan"]
    out["scan_over_step"] = out["rollout_scan"] / out["rollout_step"]
    return out


def brax(args) -> dict:
    import jax
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_paper_scale import _device_put_replicated
    if not hasattr(jax, "device_put_replicated"):  # brax 0.14.2 on jax >= 0.10
        jax.device_put_replicated = _device_put_replicated
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo
    from mujoco_playground import registry, wrapper
    from mujoco_playground.config import dm_control_suite_params

    name = TASK.split(":", 1)[1]
    env = registry.load(name, config_overrides={"impl": "jax"})
    kw = dict(dm_control_suite_params.brax_ppo_config(name))
    kw.pop("network_factory", None)
    kw.update(num_envs=GEOMETRY["num_envs"], unroll_length=GEOMETRY["unroll_length"],
              num_minibatches=GEOMETRY["num_minibatches"], batch_size=GEOMETRY["batch_size"],
              num_updates_per_batch=GEOMETRY["num_epochs"])
    per_iter = GEOMETRY["batch_size"] * GEOMETRY["num_minibatches"] * GEOMETRY["unroll_length"]
    # One training iteration per Brax epoch (num_evals - 1 epochs; the first compiles, the others
    # are timed). Playground's config has num_resets_per_eval=10, with which Brax splits each epoch
    # into 10 timed calls but multiplies every call's `training/sps` by 10 (brax 0.14.2,
    # ppo/train.py: `sps = steps_per_epoch * env_step_per_training_step *
    # max(num_resets_per_eval, 1) / epoch_training_time`, the time of ONE of those calls): its
    # figure is 10x the real rate. So: no resets between epochs (they are outside the timer
    # anyway), and the rate is ours to compute: env steps over `training/walltime` (the summed
    # time of the timed calls, evaluations excluded) between two progress reports.
    kw.update(num_timesteps=(args.iterations + 1) * per_iter, num_evals=args.iterations + 2, num_eval_envs=16,
              num_resets_per_eval=0)
    reports: list[tuple[int, float, float]] = []  # (env steps, training/walltime, Brax's own sps)
    t0 = time.perf_counter()
    ppo.train(environment=env, wrap_env_fn=wrapper.wrap_for_brax_training,
              network_factory=ppo_networks.make_ppo_networks,
              progress_fn=lambda step, m: reports.append((int(step), float(m.get("training/walltime", 0.0)),
                                                          float(m.get("training/sps", float("nan"))))), **kw)
    timed = reports[1:]  # reports[0]: the evaluation before training; reports[1]: the epoch that compiles
    steps = timed[-1][0] - timed[0][0]
    seconds = timed[-1][1] - timed[0][1]
    return {"env_steps_per_s": steps / seconds, "timed_env_steps": steps, "timed_s": round(seconds, 3),
            "brax_reported_sps": [round(s) for _, _, s in timed], "wall_s": time.perf_counter() - t0,
            "steps_per_iteration": per_iter}


def child(args) -> None:
    pin(args.threads)
    out = {"ours": ours, "brax": brax, "rollouts": rollouts}[args.child](args)
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="cores (and pool threads) of each side's process")
    p.add_argument("--iterations", type=int, default=3, help="timed iterations of 61,440 env steps per side")
    p.add_argument("--only", choices=("ours", "brax", "rollouts"),
                   help="one side; 'rollouts': our collect() alone, per-step path vs the scan, interleaved")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE config override of our PPO")
    p.add_argument("--child", choices=("ours", "brax", "rollouts"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    res = {}
    for side in [args.only] if args.only else ["ours", "brax"]:
        cmd = [sys.executable, __file__, "--child", side, "--threads", str(args.threads),
               "--iterations", str(args.iterations), *sum((["--set", s] for s in args.set), [])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"{side} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        res[side] = json.loads(line[-1][7:])
        print(f"{side:5s} {res[side]['env_steps_per_s']:10.0f} env steps/s  {json.dumps(res[side])}", flush=True)
    if len(res) == 2:
        print(f"ratio ours/brax = {res['ours']['env_steps_per_s'] / res['brax']['env_steps_per_s']:.3f} "
              f"({TASK}, {GEOMETRY}, {args.threads} thread(s), {args.iterations} timed iterations)")


if __name__ == "__main__":
    main()
