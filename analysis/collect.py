"""Run directories -> one tidy evaluation table, per-run final scores, run status.

Layout read (written by ``gorl-bench train ... --out DIR``, see :mod:`gorl.rundir`)::

    RUNS_ROOT/{algorithm}/{task}/seed{seed}/{status.json, evals.csv, probes.npz, ...}

Status of a run, as reported in every table:

``completed`` / ``diverged``  status.json written by the CLI (the run has ended)
``failed``                     status.json written by the workflow's training wrapper when the
                               CLI crashed (reason = exit code + log tail)
``incomplete``                 evals.csv but no status.json (killed / still running)
``missing``                    expected (listed in the config) but no directory at all

Final score = the LAST evaluation of the run (spec 1.4: the last point, not the best).
Diverged runs keep their last finite evaluation before divergence (``diverged_policy:
last_eval``, default) or score 0 (``diverged_policy: zero``); they are flagged either way.
Failed / incomplete / missing runs have no final score (NaN, ``included = False``) and are
listed, never dropped silently. normalized_return = return / 1000 (spec 1.5).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

RETURN_SCALE = 1000.0
TIDY_COLUMNS = ["algorithm", "task", "seed", "env_step", "return", "return_std",
                "normalized_return", "stage", "status", "wall_time"]
FINAL_COLUMNS = ["algorithm", "task", "seed", "status", "included", "diverged", "final_env_step",
                 "final_return", "final_normalized", "n_evals", "env_steps", "reason", "run_dir"]
DIVERGED_POLICIES = ("last_eval", "zero")
_SEED_RE = re.compile(r"^seed(-?\d+)$")


def run_dir(root: Path, algorithm: str, task: str, seed: int) -> Path:
    return Path(root) / algorithm / task / f"seed{seed}"


def discover(root: Path) -> list[tuple[str, str, int]]:
    """Every (algorithm, task, seed) directory under ``root``."""
    found = []
    root = Path(root)
    if not root.is_dir():
        return found
    for a in sorted(p for p in root.iterdir() if p.is_dir()):
        for t in sorted(p for p in a.iterdir() if p.is_dir()):
            for s in sorted(p for p in t.iterdir() if p.is_dir()):
                m = _SEED_RE.match(s.name)
                if m:
                    found.append((a.name, t.name, int(m.group(1))))
    return found


def _read_status(d: Path) -> dict | None:
    p = d / "status.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return {"status": "failed", "reason": f"unreadable status.json: {e}"}


def _read_evals(d: Path) -> pd.DataFrame | None:
    p = d / "evals.csv"
    if not p.exists() or p.stat().st_size == 0:
        return None
    try:
        df = pd.read_csv(p)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
    if "env_step" not in df or "return_mean" not in df:
        return None
    return df


def collect(root: Path, expected: Iterable[tuple[str, str, int]] | None = None,
            diverged_policy: str = "last_eval") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every run under ``root`` (plus the ``expected`` ones) -> (tidy, finals).

    ``tidy``: one row per evaluation of every run that has evaluations (any status).
    ``finals``: one row per run, found or expected, with status and final score.
    """
    if diverged_policy not in DIVERGED_POLICIES:
        raise ValueError(f"diverged_policy must be one of {DIVERGED_POLICIES}, got {diverged_policy!r}")
    keys = list(dict.fromkeys([*(expected or []), *discover(root)]))
    keys = [(str(a), str(t), int(s)) for a, t, s in keys]
    keys = list(dict.fromkeys(keys))
    tidy_parts, finals = [], []
    for algo, task, seed in keys:
        d = run_dir(root, algo, task, seed)
        st = _read_status(d)
        ev = _read_evals(d) if d.exists() else None
        if st is not None:
            status = str(st.get("status", "failed"))
            reason = st.get("reason")
        elif ev is not None:
            status, reason = "incomplete", "no status.json (run killed or still running)"
        else:
            status = "missing"
            reason = "no run directory" if not d.exists() else "no status.json and no evaluations"
        row = dict(algorithm=algo, task=task, seed=seed, status=status, included=False,
                   diverged=status == "diverged", final_env_step=np.nan, final_return=np.nan,
                   final_normalized=np.nan, n_evals=0,
                   env_steps=(st or {}).get("env_steps", np.nan), reason=reason, run_dir=str(d))
        if ev is not None:
            ev = ev.sort_values("env_step", kind="stable")
            part = pd.DataFrame({
                "algorithm": algo, "task": task, "seed": seed,
                "env_step": ev["env_step"].astype("int64"),
                "return": ev["return_mean"].astype(float),
                "return_std": ev["return_std"].astype(float) if "return_std" in ev else np.nan,
                "stage": ev["stage"] if "stage" in ev else 0,
                "status": status,
                "wall_time": ev["wall_time"].astype(float) if "wall_time" in ev else np.nan,
            })
            part["normalized_return"] = part["return"] / RETURN_SCALE
            tidy_parts.append(part)
            finite = part[np.isfinite(part["return"])]
            row["n_evals"] = len(part)
            if status in ("completed", "diverged") and len(finite):
                last = finite.iloc[-1]
                row["final_env_step"] = int(last["env_step"])
                row["final_return"] = float(last["return"])
                row["included"] = True
        if status == "diverged":
            row["included"] = True
            if diverged_policy == "zero" or not np.isfinite(row["final_return"]):
                row["final_return"] = 0.0
                if not np.isfinite(row["final_env_step"]) and ev is not None and len(ev):
                    row["final_env_step"] = int(ev["env_step"].iloc[-1])
        row["final_normalized"] = row["final_return"] / RETURN_SCALE
        finals.append(row)
    tidy = (pd.concat(tidy_parts, ignore_index=True) if tidy_parts
            else pd.DataFrame({c: pd.Series(dtype=float) for c in TIDY_COLUMNS}))
    tidy = tidy[TIDY_COLUMNS]
    for c in ("algorithm", "task", "status"):
        tidy[c] = tidy[c].astype(str)
    tidy["stage"] = tidy["stage"].astype(str)
    finals = pd.DataFrame(finals, columns=FINAL_COLUMNS)
    return tidy, finals


def problems(finals: pd.DataFrame) -> pd.DataFrame:
    """Runs that are not usable as a final score (failed / incomplete / missing)."""
    return finals.loc[~finals["included"], ["algorithm", "task", "seed", "status", "reason", "run_dir"]]


def save(tidy: pd.DataFrame, finals: pd.DataFrame, out: dict[str, Path]) -> None:
    """Write tidy (parquet + csv), finals (csv) and problem runs (csv)."""
    for k, p in out.items():
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    tidy.to_parquet(out["tidy_parquet"], index=False)
    tidy.to_csv(out["tidy_csv"], index=False)
    finals.to_csv(out["finals"], index=False)
    problems(finals).to_csv(out["problems"], index=False)


def read_probes(root: Path, algorithm: str, task: str, seed: int) -> dict[str, np.ndarray] | None:
    p = run_dir(root, algorithm, task, seed) / "probes.npz"
    if not p.exists():
        return None
    with np.load(p) as z:
        return {k: z[k] for k in z.files}
