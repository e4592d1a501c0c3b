"""Reproduced final scores next to the published numbers (spec 7.1, 13.7).

Per (algorithm, task): the reproduced final return (each run's LAST evaluation, as the
release reports it; never its best), the v1 results figure's reading (spec 7.1) and the
release's ``target_return`` with how many runs met it (``performance_target_met``: final
return >= target, the release's definition, spec 13.7).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.physics import paper_key, physics, physics_tag

PAPER_CSV = Path(__file__).parent / "data" / "paper_results.csv"
TARGETS_CSV = Path(__file__).parent / "data" / "release_targets.csv"
PAPER_BUDGET = 180_000_000

NOTE = (
    "**Reproduced**: mean ± std (ddof=1) over seeds of each run's final score, its LAST evaluation "
    "(not its best), as the release reports; 'budget' = env steps the runs actually used (median over "
    "seeds). **v1 figure**: the GoRL v1 results figure, digitised (docs/specification.md section 7.1; "
    "±5 reading error; band = approximate half-width of the shaded band, '~' = approximate), at "
    f"{PAPER_BUDGET / 1e6:.0f}M env steps (GoRL: 178.9M encoder steps, data collection not counted). "
    "**Release target**: `target_return` of the authors' ICML 2026 release (configs/tasks/*.toml, "
    "commit 8a0209c5); 'met' counts the runs whose final score is >= it, the release's "
    "`performance_target_met` (spec 13.7). The release publishes no per-task returns."
)


def read_paper(path: Path = PAPER_CSV) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def read_targets(path: Path = TARGETS_CSV) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def comparison(finals: pd.DataFrame, paper: pd.DataFrame | None = None,
               targets: pd.DataFrame | None = None) -> pd.DataFrame:
    paper = read_paper() if paper is None else paper
    targets = read_targets() if targets is None else targets
    use = finals[finals["included"]]
    grp = use.groupby(["algorithm", "task"])
    rep = pd.DataFrame({
        "repro_mean": grp["final_return"].mean(),
        "repro_std": grp["final_return"].std(ddof=1),
        "repro_n_seeds": grp["final_return"].size(),
        "repro_n_diverged": grp["diverged"].sum(),
        "repro_budget_env_steps": grp["env_steps"].median(),
    }).reset_index()
    expected = finals.groupby(["algorithm", "task"]).size().rename("expected_runs").reset_index()
    rep = expected.merge(rep, on=["algorithm", "task"], how="left")
    rep["repro_n_seeds"] = rep["repro_n_seeds"].fillna(0).astype(int)
    rep["physics"] = rep["task"].map(physics)
    rep["_paper_task"] = rep["task"].map(paper_key)  # playground:CheetahRun reports against cheetah-run
    out = rep.merge(paper[["algorithm", "task", "return", "band", "band_approx", "note"]]
                    .rename(columns={"task": "_paper_task", "return": "paper_return", "band": "paper_band",
                                     "note": "paper_note"}),
                    on=["algorithm", "_paper_task"], how="left")  # only what ran
    out = out.merge(targets[["task", "target_return"]].rename(columns={"task": "_paper_task"}),
                    on="_paper_task", how="left").drop(columns="_paper_task")
    met = use.assign(_paper_task=use["task"].map(paper_key)).merge(
        targets[["task", "target_return"]].rename(columns={"task": "_paper_task"}), on="_paper_task")
    met = (met["final_return"] >= met["target_return"]).groupby([met["algorithm"], met["task"]]).sum()
    out["target_met_runs"] = [int(met.get((a, t), 0)) if np.isfinite(tr) else np.nan
                              for a, t, tr in zip(out["algorithm"], out["task"], out["target_return"])]
    out["paper_budget_env_steps"] = np.where(out["paper_return"].notna(), PAPER_BUDGET, np.nan)
    out["expected_runs"] = out["expected_runs"].fillna(0).astype(int)
    out["repro_n_seeds"] = out["repro_n_seeds"].fillna(0).astype(int)
    algo_rank = {a: i for i, a in enumerate(dict.fromkeys(finals["algorithm"]))}  # experiment order
    task_rank = {t: i for i, t in enumerate(dict.fromkeys(finals["task"]))}
    out = out.assign(_t=out["task"].map(task_rank), _a=out["algorithm"].map(algo_rank))
    return out.sort_values(["_t", "_a"]).drop(columns=["_t", "_a"]).reset_index(drop=True)


def _pm(m, s, approx=False) -> str:
    if m is None or not np.isfinite(m):
        return "-"
    f = ".1f" if abs(m) < 10 else ".0f"  # tiny smoke-budget returns stay readable
    if s is None or not np.isfinite(s):
        return f"{m:{f}}"
    return f"{m:{f}} ± {'~' if approx else ''}{s:{f}}"


def markdown(table: pd.DataFrame, styles=None) -> str:
    """The table a person scans: one short physics tag per row, the physics said once per task
    in a legend below."""
    styles = styles or {}
    lines = ["# Reproduced vs published final returns", "",
             "Final score = each run's **last** evaluation (mean ± std over seeds).", "",
             "| task | physics | algorithm | reproduced | seeds (ok/expected) | diverged | budget used (env steps) "
             "| v1 figure | release target | target met (runs) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        label = styles.get(r.algorithm, {}).get("label", r.algorithm)
        budget = f"{r.repro_budget_env_steps:,.0f}" if np.isfinite(r.repro_budget_env_steps) else "-"
        paper = _pm(r.paper_return, r.paper_band, bool(r.band_approx) if r.band_approx == r.band_approx else False)
        if isinstance(r.paper_note, str) and r.paper_note:
            paper += f" ({r.paper_note})"
        div = int(r.repro_n_diverged) if np.isfinite(r.repro_n_diverged) else 0
        target = f"{r.target_return:.0f}" if np.isfinite(r.target_return) else "-"
        met = f"{int(r.target_met_runs)}/{r.repro_n_seeds}" if np.isfinite(r.target_return) else "-"
        lines.append(f"| {r.task} | {physics_tag(r.task)} | {label} | {_pm(r.repro_mean, r.repro_std)} "
                     f"| {r.repro_n_seeds}/{r.expected_runs} | {div} | {budget} | {paper} | {target} | {met} |")
    lines += ["", "**Physics.** `MJX`: MuJoCo Playground's MJX ports, the physics the paper trained on. "
              "`dm_control`: the dm_control suite models; returns are on the same [0, 1000] scale but the "
              "environments are not identical. Per task (spec 1.1, analysis/data/task_physics.csv):", ""]
    for task in dict.fromkeys(table["task"]):
        lines.append(f"- {task}: {physics(task)}")
    lines += ["", NOTE, ""]
    return "\n".join(lines)
