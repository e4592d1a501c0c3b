"""Reproduced final scores next to the paper's reported numbers (spec 7.1)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.physics import paper_key, physics

PAPER_CSV = Path(__file__).parent / "data" / "paper_results.csv"
PAPER_BUDGET = 180_000_000

NOTE = (
    "Paper numbers: digitised from the GoRL results figure (docs/specification.md section 7.1; "
    "+-5 reading error; band = approximate half-width of the shaded band, '~' = approximate), "
    f"at a budget of {PAPER_BUDGET / 1e6:.0f}M env steps (baselines 180M; GoRL 178.9M encoder steps, "
    "data collection not counted). The paper's tasks are MuJoCo-Playground ports of the DeepMind "
    "Control Suite run in MJX; the physics column names what each row ran on: 'dm_control' rows use "
    "the dm_control 1.0.50 suite models and list how the paper's Playground port differs "
    "(analysis/data/task_physics.csv); returns are on the same [0, 1000] scale but the environments "
    "are not identical. Reproduced: mean +- std (ddof=1) "
    "over seeds of the final (last) evaluation; 'budget' = env steps the runs actually used "
    "(median over seeds)."
)


def read_paper(path: Path = PAPER_CSV) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


def comparison(finals: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    paper = read_paper() if paper is None else paper
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
                    on=["algorithm", "_paper_task"], how="left").drop(columns="_paper_task")  # only what ran
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
    styles = styles or {}
    lines = ["# Reproduced vs reported final returns", "",
             "| task | physics | algorithm | reproduced (mean ± std) | seeds (ok/expected) | diverged | budget used (env steps) | paper (reported) | paper budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        label = styles.get(r.algorithm, {}).get("label", r.algorithm)
        budget = f"{r.repro_budget_env_steps:,.0f}" if np.isfinite(r.repro_budget_env_steps) else "-"
        paper = _pm(r.paper_return, r.paper_band, bool(r.band_approx) if r.band_approx == r.band_approx else False)
        if isinstance(r.paper_note, str) and r.paper_note:
            paper += f" ({r.paper_note})"
        pb = f"{r.paper_budget_env_steps / 1e6:.0f}M" if np.isfinite(r.paper_budget_env_steps) else "-"
        div = int(r.repro_n_diverged) if np.isfinite(r.repro_n_diverged) else 0
        lines.append(f"| {r.task} | {r.physics} | {label} | {_pm(r.repro_mean, r.repro_std)} | {r.repro_n_seeds}/{r.expected_runs} "
                     f"| {div} | {budget} | {paper} | {pb} |")
    lines += ["", NOTE, ""]
    return "\n".join(lines)
