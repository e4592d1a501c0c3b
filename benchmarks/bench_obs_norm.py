"""The observation normaliser, side by side: the reference's `legacy` update vs `welford`.

    MUJOCO_GL=disable python benchmarks/bench_obs_norm.py --out DIR \
        [--tasks cartpole-balance cheetah-run] [--algos ppo gorl_fm] [--seeds 0 1 2] \
        [--preset small] [--steps 600000 [300000]] [--figure docs/figures/obs_norm.png]

The reference's normaliser drops the previous variance sum at every update (spec 2.2), so its
std falls like 1 / sqrt(iterations) and the normalised inputs grow like sqrt(iterations);
`welford` accumulates it correctly. Both modes are trained for every (algorithm, task, seed)
with the same seed (same initial networks and env resets), --jobs single-threaded runs at a
time, at --steps env steps (one value, or one per task); runs already completed under --out are read, not retrained. Prints, per algorithm, task
and mode, the last and the best evaluation return and the mean over all evaluations (area
under the curve), each as mean +- sd over seeds with the per-seed values, and the paired
difference welford - legacy per seed; writes the learning curves (mean over seeds, band = sd)
to --figure and the rows to DIR/obs_norm.csv.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import compare_settings, curve_figure, setting_dir, task_budgets, train_runs
from gorl import rundir

MODES = ("legacy", "welford")


def final_std(run: Path) -> np.ndarray:
    """The normaliser's std per observation dimension at the end of the run (GoRL: the last
    stage's encoder normaliser), from the final checkpoint."""
    import torch

    ck = torch.load(run / rundir.CHECKPOINT, map_location="cpu", weights_only=False)
    return ck.get("trainer", ck)["normalizer"]["std"].double().numpy()  # GoRL nests its trainer


def std_ratios(args) -> pd.DataFrame:
    """Per (algorithm, task, seed): median over observation dimensions of the final normaliser
    std, legacy / welford (the reference update shrinks it like 1 / sqrt(updates), spec 2.2)."""
    rows = []
    for a in args.algos:
        for t in args.tasks:
            for s in args.seeds:
                legacy, welford = (final_std(setting_dir(args.out, a, t, m, s)) for m in MODES)
                keep = welford > 1e-6  # constant observation dimensions have no spread to compare
                rows.append(dict(algorithm=a, task=t, seed=s, std_ratio=float(np.median(legacy[keep] / welford[keep]))))
    return pd.DataFrame(rows)


def std_table(args) -> None:
    print("\nfinal normaliser std, legacy / welford (median over observation dimensions), per seed")
    for (a, t), g in std_ratios(args).groupby(["algorithm", "task"], sort=False):
        print(f"  {a:15} {t:18} " + " ".join(f"{v:.3f}" for v in g["std_ratio"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["cartpole-balance", "cheetah-run"])
    ap.add_argument("--algos", nargs="+", default=["ppo", "gorl_fm"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, nargs="+", default=[600_000], help="one budget, or one per task")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="run directories (completed runs are reused)")
    ap.add_argument("--figure", type=Path, help="learning curves (default: DIR/obs_norm.png)")
    args = ap.parse_args()
    args.budget = task_budgets(ap, args.tasks, args.steps)
    # seed-major order: the first seed of every cell finishes first
    runs = [(setting_dir(args.out, a, t, m, s),
             [a, t, "--preset", args.preset, "--steps", str(args.budget[t]), "--seed", str(s),
              "--set", f"obs_norm_mode={m}"])
            for s in args.seeds for t in args.tasks for a in args.algos for m in args.modes]
    t0 = time.perf_counter()
    train_runs(runs, args.jobs)
    print(f"{len(runs)} runs, {time.perf_counter() - t0:.0f} s of training in this call\n")
    budget = ", ".join(f"{t} {n:,}" for t, n in args.budget.items())
    df, _ = compare_settings(args.out, args.algos, args.tasks, args.seeds, args.modes, "mode", "normaliser",
                             new="welford", old="legacy", csv=args.out / "obs_norm.csv",
                             header=f"preset {args.preset}; env steps per run: {budget}")
    if set(MODES) <= set(args.modes):
        std_table(args)
    curve_figure(df, args.figure or args.out / "obs_norm.png", "mode", args.modes, {}, args.algos, args.tasks,
                 f"observation normaliser, preset {args.preset}, {len(args.seeds)} seeds (mean, band = sd)")


if __name__ == "__main__":
    np.set_printoptions(precision=2)
    main()
