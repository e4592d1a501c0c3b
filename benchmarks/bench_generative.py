"""Time breakdown of FPO and DPPO vs Gaussian PPO (per 1k env steps).

Runs each algorithm's shared trainer for a few iterations of its ``small`` preset on
cheetah-run and reads the trainer's ``timing`` dict (env stepping, policy inference
during rollouts, update), then times the policy's ``act`` alone at the rollout batch.

    MUJOCO_GL=disable python benchmarks/bench_generative.py [--task cheetah-run] [--iterations 2]

What bounds generative sampling: one FPO/DPPO action is 10 Euler steps = 10 sequential
calls of the 32x4 velocity net (FPO's old CFM losses are computed once per rollout in
``finish_rollout``, counted in "infer"; DPPO's log-likelihoods reuse the chain's means),
where the Gaussian policy makes 1 call of a same-sized 32x4 net. At small CPU batches
every call costs mostly fixed per-op overhead (the sampler is down to 2 addmm's plus the
hidden layers per step), so the ratio tends towards the ratio of op counts; at large
batches it tends towards the FLOP ratio, ~10x.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from common import best_of, breakdown, make_trainer

ALGOS = ("ppo", "fpo", "dppo")


def bench_trainer(name: str, task: str, preset: str, iterations: int, tmp: Path) -> dict:
    trainer = make_trainer(name, task, preset, tmp)
    cfg, agent = trainer.cfg, trainer.agent
    row = breakdown(trainer, iterations)
    # act() alone at the rollout batch (no env), best of 7 means over 100 calls
    obs = torch.as_tensor(trainer.envs.obs)
    obs_n = trainer.normalizer(obs)
    with torch.no_grad():
        act_ms = best_of(lambda: agent.act(obs_n, obs), rounds=7, calls=100, warmup=20) * 1e3
    return {"algo": name, **row, "act_ms": act_ms, "batch": cfg.num_envs, "epochs": cfg.num_epochs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="cheetah-run")
    p.add_argument("--preset", default="small")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        rows = [bench_trainer(a, args.task, args.preset, args.iterations, Path(d)) for a in ALGOS]
    base = rows[0]
    print(f"task {args.task}, preset {args.preset}, {rows[0]['steps']} env steps per algorithm "
          f"(batch {base['batch']} envs, {base['epochs']} epochs), torch threads {args.threads}")
    print(f"{'algo':6} {'env s/1k':>9} {'infer s/1k':>11} {'update s/1k':>12} {'total s/1k':>11} "
          f"{'act() ms':>9} {'act/PPO':>8} {'infer/PPO':>10} {'update/PPO':>11}")
    for r in rows:
        total = r["env"] + r["inference"] + r["update"]
        print(f"{r['algo']:6} {r['env']:9.3f} {r['inference']:11.3f} {r['update']:12.3f} {total:11.3f} "
              f"{r['act_ms']:9.3f} {r['act_ms'] / base['act_ms']:7.2f}x {r['inference'] / base['inference']:9.2f}x "
              f"{r['update'] / base['update']:10.2f}x")


if __name__ == "__main__":
    main()
