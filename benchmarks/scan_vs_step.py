"""The scan rollout against the per-step path on any `playground:` task, step by step.

    MUJOCO_GL=disable python benchmarks/scan_vs_step.py --algo gorl_fm --task playground:HumanoidStand \
        --set action_semantics=bounded --set latent_bounded=true
    python benchmarks/scan_vs_step.py --algo ppo --task playground:CheetahRun --envs 2048 --steps 30 --device cuda

Two trainers of ``--algo`` (``--preset``, here ``--envs`` envs and one rollout of ``--steps``
steps), built from the same torch seed; GoRL's encoder acts through a decoder with random
weights (stage 1's settings). One collects with ``rollout=step``, the other with
``rollout=scan``, from the same weights, normaliser, env seeds and torch seed. Printed: per step,
the largest |difference| of the observations, of what ``act`` stores (GoRL/PPO: the Gaussian
sample ``x``; FPO: the action; DPPO: the chain) and of the rewards, and each collect's seconds
(the scan's first includes compiling). Step 0's observations are the same reset; from there on
the two paths differ by float rounding (XLA and torch sum a matmul in different orders), which
the dynamics amplify, fast on contact tasks: compare the growth with another algorithm's on the
same task to tell rounding from a difference in what is computed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import common  # noqa: F401  (sets MUJOCO_GL)
from gorl import registry
from gorl.config import build_config, parse_set
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run, resolve_device


def trainer(args, rollout: str, out: Path) -> OnPolicyTrainer:
    spec = registry.get(args.algo)
    over = dict(rollout=rollout, num_envs=args.envs, unroll_length=args.steps, num_minibatches=1,
                batch_size=args.envs, device=args.device)
    over.update(parse_set(args.set))
    cfg = build_config(spec.config_cls, spec.presets_file, args.preset, args.task, over)
    run = Run(algo=args.algo, task=args.task, seed=0, preset=args.preset, dir=out / rollout, config={}, quiet=True,
              device=resolve_device(cfg.device))
    run.dir.mkdir(parents=True)
    torch.manual_seed(0)
    obs_dim, act_dim = run.env_dims()
    if hasattr(cfg, "for_stage"):  # GoRL: stage 1's encoder through a decoder with random weights
        from gorl.algorithm.gorl import make_decoder, make_encoder
        decoder = make_decoder(cfg, obs_dim, act_dim).to(run.device)
        return OnPolicyTrainer(cfg.stage_config(1), run, make_encoder(cfg, 1, obs_dim, act_dim, decoder))
    return OnPolicyTrainer(cfg, run, spec.make_agent(cfg, obs_dim, act_dim))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", default="gorl_fm")
    p.add_argument("--task", default="playground:CartpoleBalance")
    p.add_argument("--preset", default="smoke")
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {}
        for rollout in ("step", "scan"):
            t = trainer(args, rollout, Path(tmp))
            if rollout == "scan" and t._scan is None:
                raise SystemExit(f"{args.algo} on {args.task} with {args.set}: no scan program")
            torch.manual_seed(10)
            t0 = time.perf_counter()
            out[rollout] = t.collect()
            print(f"{rollout:5s} collect {time.perf_counter() - t0:7.2f} s", flush=True)
            if rollout == "scan":
                print(f"env action: {t._scan.env_action}")
    a, b = out["step"], out["scan"]
    print("step  max|d obs|  " + "  ".join(f"max|d {k}|" for k in a["stored"]) + "  max|d reward|")
    for s in range(args.steps):
        diffs = [a["obs"][s] - b["obs"][s]] + [a["stored"][k][s] - b["stored"][k][s] for k in a["stored"]] + \
            [a["reward"][s] - b["reward"][s]]
        print(f"{s:4d}  " + "  ".join(f"{float(d.abs().max()):9.2e}" for d in diffs))


if __name__ == "__main__":
    main()
