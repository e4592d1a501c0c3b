"""Pipeline benchmark (prints numbers; not a test).

(a) Wall time of the real smoke workflow (config/config.yaml: every algorithm in it x 2 tasks
    x 2 seeds) with ``--cores 1`` and ``--cores 2``, each from scratch in its own temporary
    working directory, and the speed-up (target >= 1.7x on 2 cores).
(b) The analysis step alone (what the ``statistics`` rule computes) on a synthetic
    paper-sized table: 5 algorithms x 6 tasks x 10 seeds x 30 evaluations, 50,000
    stratified-bootstrap replications (target < 60 s), timed part by part so the dominant
    part is named.

    python benchmarks/bench_pipeline.py                  # both parts (~15 min on 2 cores)
    python benchmarks/bench_pipeline.py --skip-workflow  # (b) only, ~1 min
    python benchmarks/bench_pipeline.py --skip-analysis --config steps=8000   # quicker (a)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "disable")


# ------------------------------------------------------------------------- (a) workflow
def run_workflow(cores: int, extra_config: list[str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix=f"bench_pipeline_c{cores}_") as work:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", work,
               "--configfile", str(ROOT / "config" / "config.yaml"), "--cores", str(cores), "--quiet", "all"]
        if extra_config:
            cmd += ["--config", *extra_config]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            sys.exit(f"workflow with --cores {cores} failed:\n{out.stderr[-4000:]}")
        n_runs = sum(1 for _ in Path(work).glob("results/*/runs/*/*/seed*/status.json"))
    return wall, n_runs


def bench_workflow(extra_config: list[str]) -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    print(f"(a) smoke workflow: {len(cfg['algorithms'])} algorithms x {len(cfg['tasks'])} tasks x "
          f"{len(cfg['seeds'])} seeds, {cfg['steps']:,} env steps per run"
          + (f", --config {' '.join(extra_config)}" if extra_config else ""))
    walls = {}
    for cores in (1, 2):
        wall, n = run_workflow(cores, extra_config)
        walls[cores] = wall
        print(f"    --cores {cores}: {wall:7.1f} s  ({n} runs, then aggregation, statistics, 6 figures)")
    print(f"    speed-up 1 -> 2 cores: {walls[1] / walls[2]:.2f}x (target >= 1.7x)")


# ------------------------------------------------------------------------- (b) analysis
def synthetic_tables(n_algos=5, n_tasks=6, n_seeds=10, n_evals=30, seed=0):
    """Tidy + final-score tables shaped like the paper experiment (learning curves that rise
    with noise; baselines evaluate every 6M steps, GoRL-like ones on a different grid)."""
    rng = np.random.default_rng(seed)
    rows, finals = [], []
    for a in range(n_algos):
        algo = f"algo{a}"
        steps = np.linspace(0, 178e6, n_evals).round().astype(np.int64) + (a % 2) * 1_000_000 * (np.arange(n_evals) > 0)
        for t in range(n_tasks):
            ceiling = rng.uniform(200, 950)
            for s in range(n_seeds):
                curve = ceiling * (1 - np.exp(-np.linspace(0, 4, n_evals))) + rng.normal(0, 40, n_evals)
                curve = np.clip(curve, 0, 1000)
                rows.append(pd.DataFrame({"algorithm": algo, "task": f"task{t}", "seed": s, "env_step": steps,
                                          "return": curve, "return_std": 10.0, "normalized_return": curve / 1000,
                                          "stage": "0", "status": "completed", "wall_time": 0.0}))
                finals.append(dict(algorithm=algo, task=f"task{t}", seed=s, status="completed", included=True,
                                   diverged=False, final_env_step=int(steps[-1]), final_return=curve[-1],
                                   final_normalized=curve[-1] / 1000, n_evals=n_evals, env_steps=int(steps[-1]),
                                   reason=None, run_dir=""))
    return pd.concat(rows, ignore_index=True), pd.DataFrame(finals)


def bench_analysis(reps: int, curve_points: int, profile_points: int) -> None:
    from analysis import stats

    tidy, finals = synthetic_tables()
    n_algos = finals["algorithm"].nunique()
    print(f"(b) analysis step on a synthetic table: {n_algos} algorithms x {finals['task'].nunique()} tasks x "
          f"{finals['seed'].nunique()} seeds x {tidy.groupby(['algorithm', 'task', 'seed']).size().iloc[0]} evals "
          f"= {len(tidy):,} rows; {reps:,} bootstrap reps; {curve_points} curve points, "
          f"{profile_points} profile thresholds")
    families = {f"algo{i}": "gorl" if i >= 3 else "baseline" for i in range(n_algos)}
    parts = {}

    def timed(name, f):
        t0 = time.perf_counter()
        out = f()
        parts[name] = time.perf_counter() - t0
        return out

    scores, tasks, _ = timed("score matrices", lambda: stats.score_matrices(finals))
    timed("aggregate metrics (IQM/median/mean/gap x 5)", lambda: stats.aggregate_metrics(scores, reps, 0))
    pairs = stats.family_pairs(list(scores), {a: {"family": f} for a, f in families.items()})
    timed(f"probability of improvement ({len(pairs)} pairs)",
          lambda: stats.probability_of_improvement(scores, pairs, reps, 0))
    timed(f"performance profiles ({profile_points} taus x 5)",
          lambda: stats.performance_profiles(scores, np.linspace(0, 1, profile_points), reps, 0))
    curves, grid = timed("curves on common grid", lambda: stats.curves_on_grid(tidy, finals, tasks, curve_points))
    timed(f"sample-efficiency IQM curves ({curve_points} points x 5)",
          lambda: stats.sample_efficiency(curves, grid, reps, 0))
    total = sum(parts.values())
    for name, sec in parts.items():
        print(f"    {name:<48s} {sec:7.2f} s  ({100 * sec / total:4.1f}%)")
    top = max(parts, key=parts.get)
    print(f"    total {total:.1f} s (target < 60 s); dominated by: {top}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-workflow", action="store_true")
    ap.add_argument("--skip-analysis", action="store_true")
    ap.add_argument("--config", nargs="*", default=[], help="extra --config KEY=VALUE for the workflow runs")
    ap.add_argument("--reps", type=int, default=50_000)
    ap.add_argument("--curve-points", type=int, default=60, help="paper config: 60")
    ap.add_argument("--profile-points", type=int, default=101, help="schema default: 101")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; numpy {np.__version__}; load average {os.getloadavg()[0]:.2f}")
    if not a.skip_analysis:
        bench_analysis(a.reps, a.curve_points, a.profile_points)
    if not a.skip_workflow:
        bench_workflow(a.config)


if __name__ == "__main__":
    main()
