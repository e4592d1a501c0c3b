"""GoRL vs Gaussian PPO: whole-run wall time for the same env-step budget, with GoRL's
breakdown (env, encoder inference, decoder sampling, encoder update, data collection,
decoder fit).

    MUJOCO_GL=disable python benchmarks/bench_gorl.py [--task cheetah-run] [--steps 3000000] [--algo gorl_fm]

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

from common import gorl_bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="cheetah-run")
    ap.add_argument("--steps", type=int, default=3_000_000)
    ap.add_argument("--algo", default="gorl_fm")
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
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
        status = {a: json.loads((Path(d) / a / "status.json").read_text()) for a in procs}
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
