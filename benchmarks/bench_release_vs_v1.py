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


from common import compare_settings, curve_figure, setting_dir, task_budgets, train_runs

SETTINGS = ("small", "small-v1")  # the release's settings, the v1 code's


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
    args.budget = task_budgets(ap, args.tasks, args.steps)
    # seed-major order: the first seed of every cell finishes first
    runs = [(setting_dir(args.out, a, t, p, s),
             [a, t, "--preset", p, "--steps", str(args.budget[t]), "--seed", str(s),
              *decoder_overrides(a, t, p, args.decoder_fraction)])
            for s in args.seeds for t in args.tasks for a in args.algos for p in SETTINGS]
    if not args.report_only:
        t0 = time.perf_counter()
        train_runs(runs, args.jobs)
        print(f"{len(runs)} runs, {time.perf_counter() - t0:.0f} s of training in this call; load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores\n")
    budget = ", ".join(f"{t} {n:,}" for t, n in args.budget.items())
    if args.decoder_fraction != 1:
        budget += f"; GoRL decoder data and fit at {args.decoder_fraction:g} of each preset's"
    df, _ = compare_settings(args.out, args.algos, args.tasks, args.seeds, SETTINGS, "setting", "setting",
                             new="small", old="small-v1", csv=args.out / "release_vs_v1.csv",
                             header=f"env steps per run: {budget}", completed_only=args.report_only)
    seeds = len(args.seeds)
    curve_figure(df, args.figure or args.out / "release_vs_v1.png", "setting", SETTINGS,
                 {"small": "small (release)", "small-v1": "small-v1 (v1 code)"}, args.algos, args.tasks,
                 f"release vs v1 settings at one budget, {seeds} seed{'s' * (seeds > 1)} (mean, band = sd)")


if __name__ == "__main__":
    main()
