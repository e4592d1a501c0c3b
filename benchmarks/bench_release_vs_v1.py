"""The release's settings vs the arXiv v1 code's, at one small budget (issue 18, point 6).

    MUJOCO_GL=disable python benchmarks/bench_release_vs_v1.py --out DIR \
        [--tasks cartpole-balance cheetah-run] [--algos ppo fpo gorl_fm gorl_diffusion] \
        [--seeds 0 1 2] [--steps 600000 [300000]] [--jobs 2] [--decoder-fraction 1] \
        [--figure docs/figures/release_vs_v1.png] [--report-only]

The two settings are presets `small` (derived from `paper`, the authors' ICML 2026 release) and
`small-v1` (`paper-v1`, the arXiv v1 code, at small's geometry and budget; see
`gorl-bench list ALGO --preset small-v1 --task T` for every value and its origin). Both are
trained for every (algorithm, task, seed) with the same seed, --jobs single-threaded runs at a
time, at --steps env steps (one value, or one per task); runs already completed under --out are
read, not retrained. Prints, per algorithm, task and setting, the last and the best evaluation
return and the mean over all evaluations (area under the curve), each as mean +- sd over seeds
with the per-seed values, and the paired difference small - small-v1 per seed; writes the
learning curves (mean over seeds, band = sd) to --figure and the rows to DIR/release_vs_v1.csv.

--decoder-fraction f < 1 shrinks GoRL's decoder data and fit in both settings alike, to f of
what each preset collects per stage (the release's episodes; v1's steps and envs, so each v1
trajectory keeps its length) and f of a fixed number of fit steps (a fit counted in epochs
shrinks with its data); the decoder's cost on a CPU does not fall with --steps. --report-only
trains nothing and reports the completed runs (a cell's completed seeds; the paired
difference over the seeds completed in both settings).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from common import train_runs
from gorl import rundir

SETTINGS = ("small", "small-v1")  # the release's settings, the v1 code's


def run_dir(root: Path, algo: str, task: str, preset: str, seed: int) -> Path:
    return root / algo / task / preset / f"seed{seed}"


def decoder_overrides(algo: str, task: str, preset: str, fraction: float) -> list[str]:
    """``--set`` arguments that shrink a GoRL run's decoder data and fit to ``fraction`` of the preset's."""
    if fraction == 1 or not algo.startswith("gorl"):
        return []
    from gorl import registry
    from gorl.config import build_config

    a = registry.get(algo)
    cfg = build_config(a.config_cls, a.presets_file, preset, task, {})
    keys = ["collect_steps", "collect_envs"] if cfg.decoder_collection == "reference" else ["collect_episodes"]
    keys += ["decoder_train_steps"] if cfg.decoder_train_steps is not None else []
    return [arg for k in keys for arg in ("--set", f"{k}={max(1, round(getattr(cfg, k) * fraction))}")]


def complete(run: Path) -> bool:
    return (run / rundir.STATUS).exists()


def curves(args) -> pd.DataFrame:
    frames = []
    for a in args.algos:
        for t in args.tasks:
            for p in SETTINGS:
                runs = [(s, run_dir(args.out, a, t, p, s)) for s in args.seeds]
                if args.report_only and not all(complete(r) for _, r in runs):
                    print(f"{a} {t} {p}: left out seeds {[s for s, r in runs if not complete(r)]} (not completed)")
                    runs = [(s, r) for s, r in runs if complete(r)]
                for s, run in runs:
                    df = rundir.read_evals(run)
                    if df is None:
                        raise SystemExit(f"{run}: no evaluations")
                    frames.append(df[["env_step", "return_mean", "stage"]].assign(algorithm=a, task=t, setting=p, seed=s))
    return pd.concat(frames, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (algorithm, task, setting, seed): last, best and mean evaluation return."""
    g = df.groupby(["algorithm", "task", "setting", "seed"], sort=False)["return_mean"]
    return pd.DataFrame({"last": g.last(), "best": g.max(), "mean": g.mean()}).reset_index()


def report(per_seed: pd.DataFrame, args) -> None:
    def cell(x: pd.Series) -> str:
        return f"{x.mean():6.1f} +- {x.std(ddof=1) if len(x) > 1 else 0:5.1f} ({' '.join(f'{v:.0f}' for v in x)})"

    budget = ", ".join(f"{t} {n:,}" for t, n in args.budget.items())
    if args.decoder_fraction != 1:
        budget += f"; GoRL decoder data and fit at {args.decoder_fraction:g} of each preset's"
    print(f"env steps per run: {budget}; seeds {' '.join(map(str, args.seeds))}; "
          "evaluation return: mean +- sd over seeds (per seed)\n")
    print("| algorithm | task | setting | last | best | mean over evaluations |")
    print("|---|---|---|---|---|---|")
    for (a, t, p), g in per_seed.groupby(["algorithm", "task", "setting"], sort=False):
        print(f"| {a} | {t} | {p} | {cell(g['last'])} | {cell(g['best'])} | {cell(g['mean'])} |")
    print("\npaired difference small - small-v1 (same seed), per seed")
    print("| algorithm | task | last | best | mean over evaluations |")
    print("|---|---|---|---|---|")
    for (a, t), g in per_seed.groupby(["algorithm", "task"], sort=False):
        new = g[g["setting"] == "small"].set_index("seed")
        old = g[g["setting"] == "small-v1"].set_index("seed")
        if new.empty or old.empty:
            continue
        d = (new[["last", "best", "mean"]] - old[["last", "best", "mean"]]).dropna()  # seeds run in both
        if d.empty:
            continue
        cells = [f"{d[c].mean():+6.1f} ({' '.join(f'{v:+.0f}' for v in d[c])})" for c in ("last", "best", "mean")]
        print(f"| {a} | {t} | " + " | ".join(cells) + " |")


def figure(df: pd.DataFrame, path: Path, args) -> None:
    """One panel per (algorithm, task): per setting, the mean over seeds at each evaluation and a
    band of +- sd, in training order, so GoRL's two evaluations at a stage boundary (the last of
    stage k, the first of stage k+1 with the new decoder) show as a vertical step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    algos = [a for a in args.algos if a in set(df["algorithm"])]
    fig, axes = plt.subplots(len(algos), len(args.tasks), figsize=(4.4 * len(args.tasks), 2.7 * len(algos)),
                             squeeze=False, sharex="col", sharey="col")
    labels = {"small": "small (release)", "small-v1": "small-v1 (v1 code)"}
    for i, a in enumerate(algos):
        for j, t in enumerate(args.tasks):
            ax = axes[i][j]
            for k, p in enumerate(SETTINGS):
                d = df[(df["algorithm"] == a) & (df["task"] == t) & (df["setting"] == p)]
                if d.empty:
                    continue
                m = d.groupby(["stage", "env_step"])["return_mean"].agg(["mean", "std"]).fillna(0).reset_index()
                ax.plot(m["env_step"], m["mean"], color=f"C{k}", label=labels[p], marker=".", ms=3)
                for _, g in m.groupby("stage"):
                    ax.fill_between(g["env_step"], g["mean"] - g["std"], g["mean"] + g["std"], color=f"C{k}",
                                    alpha=0.2, lw=0)
            if not ax.lines:
                ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center", va="center")
                ax.axis("off")  # not set_yticks: the column's panels share their y axis
            ax.set_title(f"{a} · {t}", fontsize=10)
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:.0f}k"))
            if i == len(algos) - 1:
                ax.set_xlabel("env steps")
            if j == 0:
                ax.set_ylabel("evaluation return")
    handles, names = next((ax.get_legend_handles_labels() for ax in axes.flat if ax.lines), ([], []))
    fig.legend(handles, names, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 1.0), frameon=False)
    seeds = len(args.seeds)
    fig.suptitle(f"release vs v1 settings at one budget, {seeds} seed{'s' * (seeds > 1)} (mean, band = sd)", y=1.03)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"\nfigure: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["cartpole-balance", "cheetah-run"])
    ap.add_argument("--algos", nargs="+", default=["ppo", "fpo", "gorl_fm", "gorl_diffusion"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, nargs="+", default=[600_000], help="one budget, or one per task")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="run directories (completed runs are reused)")
    ap.add_argument("--decoder-fraction", type=float, default=1.0,
                    help="GoRL's decoder data and fit, as a fraction of each preset's (both settings alike)")
    ap.add_argument("--report-only", action="store_true", help="train nothing; report the completed runs")
    ap.add_argument("--figure", type=Path, help="learning curves (default: DIR/release_vs_v1.png)")
    args = ap.parse_args()
    if not 0 < args.decoder_fraction <= 1:
        ap.error(f"--decoder-fraction: a fraction in (0, 1], got {args.decoder_fraction}")
    if len(args.steps) not in (1, len(args.tasks)):
        ap.error(f"--steps: give one budget or one per task ({len(args.tasks)}), got {len(args.steps)}")
    args.budget = dict(zip(args.tasks, args.steps * len(args.tasks) if len(args.steps) == 1 else args.steps))
    # seed-major order: the first seed of every cell finishes first
    runs = [(run_dir(args.out, a, t, p, s),
             [a, t, "--preset", p, "--steps", str(args.budget[t]), "--seed", str(s),
              *decoder_overrides(a, t, p, args.decoder_fraction)])
            for s in args.seeds for t in args.tasks for a in args.algos for p in SETTINGS]
    if not args.report_only:
        t0 = time.perf_counter()
        train_runs(runs, args.jobs)
        print(f"{len(runs)} runs, {time.perf_counter() - t0:.0f} s of training in this call; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores\n")
    df = curves(args)
    per_seed = summary(df)
    per_seed.to_csv(args.out / "release_vs_v1.csv", index=False)
    report(per_seed, args)
    figure(df, args.figure or args.out / "release_vs_v1.png", args)


if __name__ == "__main__":
    main()
