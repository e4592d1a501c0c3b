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

from common import train_runs
from gorl import rundir

MODES = ("legacy", "welford")


def run_dir(root: Path, algo: str, task: str, mode: str, seed: int) -> Path:
    return root / algo / task / mode / f"seed{seed}"


def curves(args) -> pd.DataFrame:
    frames = []
    for a in args.algos:
        for t in args.tasks:
            for m in args.modes:
                for s in args.seeds:
                    df = rundir.read_evals(run_dir(args.out, a, t, m, s))
                    if df is None:
                        raise SystemExit(f"{run_dir(args.out, a, t, m, s)}: no evaluations")
                    frames.append(df[["env_step", "return_mean"]].assign(algorithm=a, task=t, mode=m, seed=s))
    return pd.concat(frames, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, task, mode, seed): last, best and mean evaluation return."""
    g = df.groupby(["algorithm", "task", "mode", "seed"], sort=False)["return_mean"]
    return pd.DataFrame({"last": g.last(), "best": g.max(), "mean": g.mean()}).reset_index()


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
                legacy, welford = (final_std(run_dir(args.out, a, t, m, s)) for m in MODES)
                keep = welford > 1e-6  # constant observation dimensions have no spread to compare
                rows.append(dict(algorithm=a, task=t, seed=s, std_ratio=float(np.median(legacy[keep] / welford[keep]))))
    return pd.DataFrame(rows)


def report(per_seed: pd.DataFrame, args) -> None:
    def cell(x: pd.Series) -> str:
        return f"{x.mean():6.1f} +- {x.std(ddof=1) if len(x) > 1 else 0:5.1f} ({' '.join(f'{v:.0f}' for v in x)})"

    budget = ", ".join(f"{t} {n:,}" for t, n in args.budget.items())
    print(f"preset {args.preset}; env steps per run: {budget}; seeds {' '.join(map(str, args.seeds))}; "
          "evaluation return: mean +- sd over seeds (per seed)\n")
    print("| algorithm | task | normaliser | last | best | mean over evaluations |")
    print("|---|---|---|---|---|---|")
    for (a, t, m), g in per_seed.groupby(["algorithm", "task", "mode"], sort=False):
        print(f"| {a} | {t} | {m} | {cell(g['last'])} | {cell(g['best'])} | {cell(g['mean'])} |")
    if set(MODES) <= set(args.modes):
        print("\npaired difference welford - legacy (same seed), per seed")
        print("| algorithm | task | last | best | mean over evaluations |")
        print("|---|---|---|---|---|")
        for (a, t), g in per_seed.groupby(["algorithm", "task"], sort=False):
            w = g[g["mode"] == "welford"].set_index("seed")
            lg = g[g["mode"] == "legacy"].set_index("seed")
            d = w[["last", "best", "mean"]] - lg[["last", "best", "mean"]]
            cells = [f"{d[c].mean():+6.1f} ({' '.join(f'{v:+.0f}' for v in d[c])})" for c in ("last", "best", "mean")]
            print(f"| {a} | {t} | " + " | ".join(cells) + " |")
        print("\nfinal normaliser std, legacy / welford (median over observation dimensions), per seed")
        for (a, t), g in std_ratios(args).groupby(["algorithm", "task"], sort=False):
            print(f"  {a:15} {t:18} " + " ".join(f"{v:.3f}" for v in g["std_ratio"]))


def figure(df: pd.DataFrame, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker
    import seaborn as sns

    g = sns.relplot(data=df, x="env_step", y="return_mean", hue="mode", hue_order=args.modes, row="algorithm",
                    col="task", kind="line", errorbar="sd", height=2.8, aspect=1.4,
                    facet_kws={"sharey": "col", "sharex": "col"})
    g.set_axis_labels("env steps", "evaluation return")
    for ax in g.axes.flat:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:.0f}k"))
    g.set_titles("{row_name} · {col_name}")
    g.figure.suptitle(f"observation normaliser, preset {args.preset}, {len(args.seeds)} seeds "
                      "(mean, band = sd)", y=1.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    g.savefig(path, dpi=110, bbox_inches="tight")
    print(f"\nfigure: {path}")


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
    if len(args.steps) not in (1, len(args.tasks)):
        ap.error(f"--steps: give one budget or one per task ({len(args.tasks)}), got {len(args.steps)}")
    args.budget = dict(zip(args.tasks, args.steps * len(args.tasks) if len(args.steps) == 1 else args.steps))
    # seed-major order: the first seed of every cell finishes first
    runs = [(run_dir(args.out, a, t, m, s),
             [a, t, "--preset", args.preset, "--steps", str(args.budget[t]), "--seed", str(s),
              "--set", f"obs_norm_mode={m}"])
            for s in args.seeds for t in args.tasks for a in args.algos for m in args.modes]
    t0 = time.perf_counter()
    train_runs(runs, args.jobs)
    print(f"{len(runs)} runs, {time.perf_counter() - t0:.0f} s of training in this call\n")
    df = curves(args)
    per_seed = summary(df)
    per_seed.to_csv(args.out / "obs_norm.csv", index=False)
    report(per_seed, args)
    figure(df, args.figure or args.out / "obs_norm.png", args)


if __name__ == "__main__":
    np.set_printoptions(precision=2)
    main()
