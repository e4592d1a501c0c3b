"""Every figure of the benchmark, written as PDF and PNG.

One colour and one legend label per algorithm everywhere (``styles`` from
:func:`analysis.style.resolve_styles`, i.e. the registry). Every function takes an output
stem ``.../name`` and writes ``name.pdf`` and ``name.png``; with no data it still writes a
figure that says so (a pipeline output must exist).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import actions as act  # noqa: E402
from .style import order  # noqa: E402

DPI = 150


def setup() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.35)
    plt.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "axes.titleweight": "bold",
                         "legend.frameon": False, "savefig.bbox": "tight"})


def save(fig, stem: str | Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if stem.suffix in (".png", ".pdf"):
        stem = stem.with_suffix("")
    paths = [stem.with_suffix(".pdf"), stem.with_suffix(".png")]
    fig.savefig(paths[0])
    fig.savefig(paths[1], dpi=DPI)
    plt.close(fig)
    return paths


def _empty(stem, msg: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.axis("off")
    ax.text(0.5, 0.5, msg, ha="center", va="center", wrap=True)
    return save(fig, stem)


def _steps_fmt(ax, max_step: float) -> str:
    if max_step >= 2e6:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}"))
        return "env steps (millions)"
    if max_step >= 2e3:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e3:g}"))
        return "env steps (thousands)"
    return "env steps"


def _legend(fig, algos: Sequence[str], styles: Mapping[str, Mapping], ncol: int | None = None) -> None:
    handles = [matplotlib.lines.Line2D([], [], color=styles[a]["color"], lw=3, label=styles[a]["label"]) for a in algos]
    fig.legend(handles=handles, loc="lower center", ncol=ncol or min(len(algos), 5),
               bbox_to_anchor=(0.5, -0.02 - 0.05 * math.ceil(len(algos) / (ncol or 5))))


def _axes_legend(ax, algos: Sequence[str], styles: Mapping[str, Mapping]) -> None:
    """Legend below a single-axes figure, never on top of the data."""
    handles = [matplotlib.lines.Line2D([], [], color=styles[a]["color"], lw=3, label=styles[a]["label"]) for a in algos]
    ncol = min(len(algos), 3)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=ncol)


# ------------------------------------------------------------------------- learning curves
def grid_columns(n_tasks: int) -> int:
    """Panels per row of the learning-curve grid: the paper's 2 x 3 for six tasks, 2 x 4 for its
    eight (the six dm_control tasks and the two humanoids)."""
    return 4 if n_tasks in (4, 7, 8) else 3


def learning_curves(tidy: pd.DataFrame, styles: Mapping[str, Mapping], stem, tasks: Sequence[str] | None = None):
    """Per-task return vs env steps: mean over seeds, shaded band = +-1 std over seeds."""
    setup()
    tidy = tidy[np.isfinite(tidy["return"])]
    if tidy.empty:
        return _empty(stem, "no evaluations yet")
    tasks = list(tasks or dict.fromkeys(tidy["task"]))
    algos = order(tidy["algorithm"].unique(), styles)
    ncol = min(grid_columns(len(tasks)), len(tasks))
    nrow = math.ceil(len(tasks) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.9 * nrow), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        sub = tidy[tidy["task"] == task]
        for a in algos:
            runs = sub[sub["algorithm"] == a]
            if runs.empty:
                continue
            grid = np.unique(runs["env_step"].to_numpy(float))
            ys = []
            for _, r in runs.groupby("seed"):
                r = r.sort_values("env_step")
                x, y = r["env_step"].to_numpy(float), r["return"].to_numpy(float)
                yi = np.interp(grid, x, y)
                yi[(grid < x[0]) | (grid > x[-1])] = np.nan  # no extrapolation
                ys.append(yi)
            ys = np.array(ys)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                m = np.nanmean(ys, axis=0)
                s = np.nanstd(ys, axis=0)
            c = styles[a]["color"]
            ax.plot(grid, m, color=c, lw=2, label=styles[a]["label"])
            if len(ys) > 1:
                ax.fill_between(grid, m - s, m + s, color=c, alpha=0.2, lw=0)
        ax.set_title(task)
        ax.set_xlabel(_steps_fmt(ax, float(sub["env_step"].max() if len(sub) else 0)))
        ax.set_ylabel("episode return")
        ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    n_seeds = tidy.groupby(["algorithm", "task"])["seed"].nunique()
    seeds_txt = (f"{n_seeds.min()} seeds" if n_seeds.min() == n_seeds.max()
                 else f"{n_seeds.min()}-{n_seeds.max()} seeds")
    fig.suptitle(f"line = mean, band = ±1 std over seeds ({seeds_txt})", fontsize=11, y=1.0)
    fig.tight_layout()
    _legend(fig, algos, styles)
    return save(fig, stem)


# ---------------------------------------------------------------------- aggregate metrics
def aggregate_intervals(agg: pd.DataFrame, styles: Mapping[str, Mapping], stem):
    """Point estimate and 95% CI per metric and algorithm (rliable's plot_interval_estimates layout)."""
    setup()
    if agg.empty:
        return _empty(stem, "no usable final scores")
    metrics = list(dict.fromkeys(agg["metric"]))
    algos = order(agg["algorithm"].unique(), styles)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.55 * len(algos) + 1.6), squeeze=False)
    for ax, met in zip(axes[0], metrics):
        for i, a in enumerate(algos):
            r = agg[(agg["algorithm"] == a) & (agg["metric"] == met)]
            if r.empty:
                continue
            r = r.iloc[0]
            c = styles[a]["color"]
            ax.barh(i, r["upper"] - r["lower"], left=r["lower"], height=0.6, color=c, alpha=0.75)
            ax.vlines(r["estimate"], i - 0.3, i + 0.3, color="k", lw=2)
        ax.set_yticks(range(len(algos)))
        ax.set_yticklabels([styles[a]["label"] for a in algos] if ax is axes[0, 0] else [])
        ax.set_title(met + (" (lower = better)" if met == "Optimality Gap" else ""), fontsize=12)
        ax.set_xlabel("normalised score")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.invert_yaxis()
    info = agg.iloc[0]
    runs = agg.groupby("algorithm")["n_runs"].first()
    runs_txt = f"{runs.min()}" if runs.min() == runs.max() else f"{runs.min()}-{runs.max()}"
    fig.suptitle(f"95% stratified-bootstrap CIs ({int(info['reps']):,} reps) over {runs_txt} runs x "
                 f"{int(info['n_tasks'])} tasks; black tick = point estimate", fontsize=11, y=1.0)
    fig.tight_layout()
    return save(fig, stem)


def probability_of_improvement(poi: pd.DataFrame, styles: Mapping[str, Mapping], stem):
    """P(X > Y) with 95% CI for each gorl-family X vs baseline-family Y."""
    setup()
    if poi.empty:
        return _empty(stem, "no (gorl, baseline) pair with usable scores")
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(poi) + 1.5))
    for i, r in enumerate(poi.itertuples()):
        c = styles.get(r.algorithm_x, {}).get("color", "C0")
        ax.barh(i, r.upper - r.lower, left=r.lower, height=0.6, color=c, alpha=0.75)
        ax.vlines(r.probability, i - 0.3, i + 0.3, color="k", lw=2)
    ax.axvline(0.5, color="gray", ls="--", lw=1)
    ax.set_yticks(range(len(poi)))
    ax.set_yticklabels([f"{styles[r.algorithm_x]['label']}  >  {styles[r.algorithm_y]['label']}"
                        for r in poi.itertuples()])
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("P(X > Y)   (0.5 = no difference)")
    ax.set_title(f"95% stratified-bootstrap CIs, {int(poi['reps'].iloc[0]):,} reps" if "reps" in poi else "",
                 fontsize=11, fontweight="normal")
    fig.tight_layout()
    return save(fig, stem)


def _lines_with_bands(ax, df: pd.DataFrame, x: str, y: str, algos: Sequence[str],
                      styles: Mapping[str, Mapping]) -> None:
    """One line per algorithm with its [lower, upper] interval as a band."""
    for a in algos:
        r = df[df["algorithm"] == a].sort_values(x)
        c = styles[a]["color"]
        ax.plot(r[x], r[y], color=c, lw=2, label=styles[a]["label"])
        ax.fill_between(r[x], r["lower"], r["upper"], color=c, alpha=0.2, lw=0)


def performance_profiles(prof: pd.DataFrame, styles: Mapping[str, Mapping], stem):
    setup()
    if prof.empty:
        return _empty(stem, "no usable final scores")
    algos = order(prof["algorithm"].unique(), styles)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _lines_with_bands(ax, prof, "tau", "fraction", algos, styles)
    ax.set_xlabel(r"normalised score $\tau$ (return / 1000)")
    ax.set_ylabel(r"fraction of runs with score $> \tau$")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 1)
    _axes_legend(ax, algos, styles)
    fig.tight_layout()
    return save(fig, stem)


def sample_efficiency(se: pd.DataFrame, styles: Mapping[str, Mapping], stem):
    setup()
    if se.empty:
        return _empty(stem, "no usable learning curves")
    algos = order(se["algorithm"].unique(), styles)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    _lines_with_bands(ax, se, "env_step", "iqm", algos, styles)
    ax.set_xlabel(_steps_fmt(ax, float(se["env_step"].max())))
    ax.set_ylabel("IQM of normalised return")
    _axes_legend(ax, algos, styles)
    fig.tight_layout()
    return save(fig, stem)


# ---------------------------------------------------------------------- action distribution
def _steps_short(step: int) -> str:
    if step >= 1_000_000:
        return f"{step / 1e6:.3g}M"
    if step >= 1_000:
        return f"{step / 1e3:.3g}k"
    return str(step)


def action_distribution(probes: Mapping[str, dict], styles: Mapping[str, Mapping], stem, *, task: str,
                        action_dim: int, probe_state: int, n_snapshots: int, seed_of: Mapping[str, int]):
    """Histograms of the K probe actions (one probe state, one action dim) through training.

    Rows: algorithms (label on the left, in the algorithm's colour); columns: evaluations
    spread over training. Each panel's title gives its env step, Sarle's bimodality
    coefficient (BC) and the mixture separation (Ashman's D).
    """
    setup()
    algos = [a for a in order(probes, styles) if probes[a] is not None]
    if not algos:
        return _empty(stem, f"no probes.npz for task {task}")
    ncol = max(len(act.snapshot_indices(len(probes[a]["env_step"]), n_snapshots)) for a in algos)
    fig, axes = plt.subplots(len(algos), ncol, figsize=(3.3 * ncol + 0.6, 2.1 * len(algos) + 0.8),
                             squeeze=False, sharex=True)
    for i, a in enumerate(algos):
        pr = probes[a]
        acts = np.asarray(pr["actions"], dtype=float)
        snaps = act.snapshot_indices(acts.shape[0], n_snapshots)
        ps = min(probe_state, acts.shape[1] - 1)
        k = acts.shape[2]
        bins = np.linspace(-1, 1, int(np.clip(k // 4, 10, 40)) + 1)  # ~4 samples per bin or more
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(snaps) or action_dim >= acts.shape[-1]:
                ax.axis("off")
                continue
            e = snaps[j]
            x = acts[e, ps, :, action_dim]
            ax.hist(np.clip(x, -1, 1), bins=bins, color=styles[a]["color"], alpha=0.9, density=True)
            bc = float(act.bimodality_coefficient(x))
            d, _, _, _ = act.gmm2(x)
            step = int(pr["env_step"][e])
            ax.set_title(f"eval {e + 1}/{acts.shape[0]}: {_steps_short(step)} steps, BC {bc:.2f}, D {d:.1f}",
                         fontsize=10,
                         fontweight="normal")
            ax.set_yticks([])
            ax.set_xlim(-1.05, 1.05)
            if j == 0:
                ax.set_ylabel(styles[a]["label"], color=styles[a]["color"], fontweight="bold", fontsize=12)
            if i == len(algos) - 1:
                ax.set_xlabel(f"action[{action_dim}]")
    seeds = sorted({seed_of[a] for a in algos})
    seed_txt = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(
        f"{styles[a]['label']}={seed_of[a]}" for a in algos)
    n_samples = sorted({int(np.asarray(probes[a]["actions"]).shape[2]) for a in algos})
    fig.suptitle(f"{task}: probe state {probe_state}, action dim {action_dim}, {seed_txt}, "
                 f"{'/'.join(map(str, n_samples))} samples per panel  "
                 f"(BC > 0.555 or D > 2 suggests two peaks)", fontsize=11)
    fig.tight_layout()
    return save(fig, stem)
