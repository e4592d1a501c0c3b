"""GoRL vs Gaussian PPO: whole-run wall time for the same env-step budget, with GoRL's
breakdown (env, encoder inference, decoder sampling, encoder update, data collection,
decoder fit).

    MUJOCO_GL=disable python benchmarks/bench_gorl.py [--task cheetah-run] [--steps 3000000] [--algo gorl_fm]
    MUJOCO_GL=disable python benchmarks/bench_gorl.py --decode-only   # per-call decoder cost, both kinds

Both runs start together as single-threaded processes (one per core, as under
Snakemake) with the `small` preset and the same --steps, so they see the same machine.
Target: GoRL's wall time at most 2x Gaussian PPO's. GoRL's x-axis counts encoder steps
only; its data collection (collect_steps per stage) is extra env stepping and is shown.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from common import best_of, gorl_bench
from gorl.algorithm.decoder import Decoder
from gorl.algorithm.config import GoRLConfig
from gorl.algorithm.gorl import make_encoder
from gorl import rundir
from gorl.config import build_config
from gorl.envs import make_env
from gorl.registry import get


@torch.no_grad()
def decode_cost(task: str, preset: str) -> None:
    """Time of one decode g(s, z) per decoder kind (fitted, not identity; random weights) at
    the rollout batch, next to the encoder's own act() with an identity decoder, 1 thread."""
    torch.set_num_threads(1)
    cfg = build_config(GoRLConfig, get("gorl_fm").presets_file, preset, task, {})
    env = make_env(task, 0)
    obs_dim, act_dim, n = env.observation_space.shape[0], env.action_space.shape[0], cfg.num_envs
    torch.manual_seed(0)
    obs, z = torch.randn(n, obs_dim), torch.randn(n, act_dim)
    encoder = make_encoder(cfg, 0, obs_dim, act_dim, Decoder.identity("fm", obs_dim, act_dim, cfg.decoder_hidden))
    base = best_of(lambda: encoder.act(obs, obs))
    print(f"{task}, preset {preset}: batch {n}, decoder {cfg.decoder_hidden}, {cfg.decoder_steps} steps, 1 thread")
    print(f"  encoder act() (identity decoder) {base * 1e6:6.0f} us")
    for kind in ("fm", "diffusion"):
        dec = Decoder(kind, obs_dim, act_dim, cfg.decoder_hidden, cfg.decoder_steps)
        t = best_of(lambda: dec(obs, z))
        print(f"  {kind:9} decoder g(s, z)     {t * 1e6:6.0f} us = {t / base:4.1f}x the encoder's act()")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="cheetah-run")
    ap.add_argument("--steps", type=int, default=3_000_000)
    ap.add_argument("--algo", default="gorl_fm")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--decode-only", action="store_true", help="only time one decode per decoder kind")
    args = ap.parse_args()
    if args.decode_only:
        return decode_cost(args.task, args.preset)
    with tempfile.TemporaryDirectory() as d:
        procs, t0, wall = {}, time.perf_counter(), {}
        for algo in ("ppo", args.algo):
            procs[algo] = gorl_bench("train", algo, args.task, "--preset", args.preset, "--steps", str(args.steps),
                                     "--seed", "0", "--quiet", "--threads", "1", "--out", str(Path(d) / algo))
        while len(wall) < len(procs):
            for algo, p in procs.items():
                if algo not in wall and p.poll() is not None:
                    wall[algo] = time.perf_counter() - t0
            time.sleep(0.5)
        status = {a: json.loads((Path(d) / a / rundir.STATUS).read_text()) for a in procs}
    ppo, gorl = wall["ppo"], wall[args.algo]
    print(f"{args.task}, preset {args.preset}, --steps {args.steps}, two concurrent 1-thread runs")
    print(f"  wall time: ppo {ppo:.0f} s, {args.algo} {gorl:.0f} s -> {gorl / ppo:.2f}x (target <= 2x)")
    st = status[args.algo]
    t = st.get("timing_s", {})
    print(f"  {args.algo}: {st['env_steps']} encoder env steps + {st.get('collection_env_steps', 0)} collection "
          f"env steps")
    print("  breakdown (s; decoder sampling overlaps rollout inference and evaluation): " + ", ".join(f"{k} {v:.1f}" for k, v in [
        ("env", t.get("env", 0)), ("rollout inference (encoder + decoder)", t.get("inference", 0)),
        ("decoder sampling (rollouts + evals)", t.get("decoder_sampling", 0)),
        ("encoder update", t.get("update", 0)), ("evaluation", t.get("eval", 0)),
        ("collection", t.get("collect", 0)), ("decoder fit", t.get("decoder_fit", 0))]))


if __name__ == "__main__":
    main()
