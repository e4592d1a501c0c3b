"""Shared pieces of the benchmark scripts (they print figures; nothing here is a test)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from gorl import registry
from gorl.config import build_config
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run, resolve_device

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "disable")


def make_trainer(name: str, task: str, preset: str, tmp: Path, **overrides) -> OnPolicyTrainer:
    """The shared trainer of a single-trainer algorithm (ppo, fpo, dppo, or a plug-in
    whose module defines ``make_agent(cfg, obs_dim, act_dim)``)."""
    algo = registry.get(name)
    cfg = build_config(algo.config_cls, algo.presets_file, preset, task, overrides)
    make_agent = algo.make_agent
    torch.manual_seed(0)
    run = Run(algo=name, task=task, seed=0, preset=preset, dir=tmp / name, config={}, quiet=True,
              device=resolve_device(cfg.device))  # the config's device, as the command line places a run
    run.dir.mkdir(parents=True, exist_ok=True)
    return OnPolicyTrainer(cfg, run, make_agent(cfg, *run.env_dims()))


def best_of(fn, rounds: int = 7, calls: int = 500, warmup: int = 100) -> float:
    """Seconds per call of ``fn()``: the best of ``rounds`` means over ``calls`` calls, so a
    background hiccup on a shared machine does not count."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def breakdown(trainer: OnPolicyTrainer, iterations: int, warmup: int = 1) -> dict:
    """Seconds per 1k env steps of env stepping, policy inference and update."""
    trainer.sync_timing = True  # on a GPU: time the work, not the launches
    for _ in range(warmup):
        trainer.update(trainer.collect())
    trainer.timing = dict.fromkeys(trainer.timing, 0.0)
    t_update = 0.0
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(iterations):
        batch = trainer.collect()
        sync()
        t1 = time.perf_counter()
        trainer.update(batch)
        sync()
        t_update += time.perf_counter() - t1
    wall = time.perf_counter() - t0
    steps = iterations * trainer.cfg.steps_per_iteration
    k = 1000.0 / steps
    return {"env": trainer.timing["env"] * k, "inference": trainer.timing["inference"] * k,
            "update": t_update * k, "total": wall * k, "steps": steps, "sps": steps / wall}


def gorl_bench(*args: str, threads: int = 1, **kw) -> subprocess.Popen:
    """Start ``python -m gorl ...`` single-threaded (one run per core, as under Snakemake)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MUJOCO_GL="disable")
    return subprocess.Popen([sys.executable, "-m", "gorl", *args], env=env, cwd=ROOT, **kw)


def train_runs(runs: list[tuple[Path, list[str]]], jobs: int = 2) -> None:
    """Train every run whose directory has no status yet, ``jobs`` single-threaded runs at a
    time; ``runs`` = (run directory, ``gorl-bench train`` arguments without ``--out``)."""
    from gorl import rundir
    todo = [(out, argv) for out, argv in runs if not (out / rundir.STATUS).exists()]
    running: list = []
    while todo or running:
        while todo and len(running) < jobs:
            out, argv = todo.pop(0)
            running.append(gorl_bench("train", *argv, "--quiet", "--out", str(out), stdout=subprocess.DEVNULL))
        time.sleep(0.5)
        running = [p for p in running if p.poll() is None]


# -- two settings of the same runs, side by side (bench_obs_norm: normaliser modes;
#    bench_release_vs_v1: presets). A run lives in ROOT/ALGO/TASK/SETTING/seedS. --------------
def task_budgets(ap, tasks: list[str], steps: list[int]) -> dict[str, int]:
    """``--steps``: one env-step budget for every task, or one per task (else ``ap.error``)."""
    if len(steps) not in (1, len(tasks)):
        ap.error(f"--steps: give one budget or one per task ({len(tasks)}), got {len(steps)}")
    return dict(zip(tasks, steps * len(tasks) if len(steps) == 1 else steps))


def setting_dir(root: Path, algo: str, task: str, setting: str, seed: int) -> Path:
    return Path(root) / algo / task / setting / f"seed{seed}"


def read_curves(root: Path, algos, tasks, settings, seeds, column: str, completed_only: bool = False):
    """Every run's evaluations (``env_step``, ``return_mean``, ``stage``), tagged ``algorithm``,
    ``task``, ``column`` (the setting) and ``seed``. ``completed_only``: leave out (and name)
    the seeds of a cell that have not completed."""
    import pandas as pd

    from gorl import rundir

    frames = []
    for a in algos:
        for t in tasks:
            for p in settings:
                runs = [(s, setting_dir(root, a, t, p, s)) for s in seeds]
                if completed_only:
                    left = [s for s, r in runs if not (r / rundir.STATUS).exists()]
                    if left:
                        print(f"{a} {t} {p}: left out seeds {left} (not completed)")
                    runs = [(s, r) for s, r in runs if s not in left]
                for s, run in runs:
                    df = rundir.read_evals(run)
                    if df is None:
                        raise SystemExit(f"{run}: no evaluations")
                    if "stage" not in df:
                        df = df.assign(stage=0)
                    frames.append(df[["env_step", "return_mean", "stage"]].assign(
                        algorithm=a, task=t, **{column: p}, seed=s))
    return pd.concat(frames, ignore_index=True)


def per_seed_summary(df, column: str):
    """One row per (algorithm, task, setting, seed): last, best and mean evaluation return."""
    import pandas as pd

    g = df.groupby(["algorithm", "task", column, "seed"], sort=False)["return_mean"]
    return pd.DataFrame({"last": g.last(), "best": g.max(), "mean": g.mean()}).reset_index()


def print_comparison(per_seed, column: str, label: str, new: str, old: str) -> None:
    """The per-setting table (mean +- sd over seeds, per-seed values) and, where both
    settings ran, the paired difference ``new - old`` over the seeds completed in both."""
    def cell(x) -> str:
        return f"{x.mean():6.1f} +- {x.std(ddof=1) if len(x) > 1 else 0:5.1f} ({' '.join(f'{v:.0f}' for v in x)})"

    print(f"| algorithm | task | {label} | last | best | mean over evaluations |")
    print("|---|---|---|---|---|---|")
    for (a, t, p), g in per_seed.groupby(["algorithm", "task", column], sort=False):
        print(f"| {a} | {t} | {p} | {cell(g['last'])} | {cell(g['best'])} | {cell(g['mean'])} |")
    if not {new, old} <= set(per_seed[column]):
        return
    print(f"\npaired difference {new} - {old} (same seed), per seed")
    print("| algorithm | task | last | best | mean over evaluations |")
    print("|---|---|---|---|---|")
    cols = ["last", "best", "mean"]
    for (a, t), g in per_seed.groupby(["algorithm", "task"], sort=False):
        d = (g[g[column] == new].set_index("seed")[cols] - g[g[column] == old].set_index("seed")[cols]).dropna()
        if d.empty:
            continue
        cells = [f"{d[c].mean():+6.1f} ({' '.join(f'{v:+.0f}' for v in d[c])})" for c in cols]
        print(f"| {a} | {t} | " + " | ".join(cells) + " |")


def compare_settings(root: Path, algos, tasks, seeds, settings, column: str, label: str, new: str, old: str,
                     csv: Path, header: str, completed_only: bool = False):
    """Read the runs of every (algorithm, task, setting, seed), write the per-seed rows to
    ``csv`` and print ``header`` and the comparison ``new - old`` (:func:`print_comparison`;
    ``column`` names the setting in the rows, ``label`` in the table). Returns (curves, per-seed rows)."""
    df = read_curves(root, algos, tasks, settings, seeds, column, completed_only)
    per_seed = per_seed_summary(df, column)
    per_seed.to_csv(csv, index=False)
    print(f"{header}; seeds {' '.join(map(str, seeds))}; evaluation return: mean +- sd over seeds (per seed)\n")
    print_comparison(per_seed, column, label, new, old)
    return df, per_seed


def curve_figure(df, path: Path, column: str, settings, labels: dict, algos, tasks, title: str) -> None:
    """One panel per (algorithm, task): per setting, the mean over seeds at each evaluation and a
    band of +- sd, in training order, so GoRL's two evaluations at a stage boundary (the last of
    stage k, the first of stage k+1 with the new decoder) show as a vertical step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    algos = [a for a in algos if a in set(df["algorithm"])]
    fig, axes = plt.subplots(len(algos), len(tasks), figsize=(4.4 * len(tasks), 2.7 * len(algos)),
                             squeeze=False, sharex="col", sharey="col")
    for i, a in enumerate(algos):
        for j, t in enumerate(tasks):
            ax = axes[i][j]
            for k, p in enumerate(settings):
                d = df[(df["algorithm"] == a) & (df["task"] == t) & (df[column] == p)]
                if d.empty:
                    continue
                m = d.groupby(["stage", "env_step"])["return_mean"].agg(["mean", "std"]).fillna(0).reset_index()
                ax.plot(m["env_step"], m["mean"], color=f"C{k}", label=labels.get(p, p), marker=".", ms=3)
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
    fig.legend(handles, names, loc="upper center", ncol=len(settings), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(title, y=1.03)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"\nfigure: {path}")
