"""Run directories -> one tidy evaluation table, per-run final scores, run status.

The run-directory contract (file names, columns, statuses, the
``RUNS_ROOT/{algorithm}/{task}/seed{seed}`` layout) and its readers live in :mod:`gorl.rundir`;
this module only turns what they read into tables.

Status of a run, as reported in every table (:data:`gorl.rundir.STATUSES`):

``completed`` / ``diverged``  status.json written by the CLI (the run has ended)
``gated``                      status.json written by the CLI: a GoRL run refused its teacher's
                               data set (reason = its mean return and the floor); no final
                               score, listed among the problem runs
``failed``                     status.json written by the workflow's training wrapper when the
                               CLI crashed (reason = exit code + log tail)
``incomplete``                 evals.csv but no status.json (killed / still running)
``missing``                    expected (listed in the config) but no directory at all
``ignored``                    a run directory on disk that the config does not name: in no
                               table but the problem-runs list (with why)

The tables are a function of the experiment: given ``expected`` (the config's algorithms x
tasks x seeds) they hold exactly those runs. Final score = the LAST evaluation of the run
(spec 1.4: the last point, not the best). Diverged runs keep their last finite evaluation
before divergence (``diverged_policy: last_eval``, default) or score 0 (``diverged_policy:
zero``); they are flagged either way. Failed / incomplete / missing runs have no final score
(NaN, ``included = False``) and are listed, never dropped silently. normalized_return =
return / 1000 (spec 1.5).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from gorl import rundir
from gorl.provenance import attempts_summary

RETURN_SCALE = 1000.0
TIDY_COLUMNS = ["algorithm", "task", "seed", "env_step", "return", "return_std",
                "normalized_return", "stage", "status", "wall_time"]
FINAL_COLUMNS = ["algorithm", "task", "seed", "status", "included", "diverged", "final_env_step",
                 "final_return", "final_normalized", "n_evals", "env_steps", "reason", "run_dir",
                 "attempts", "code_changes", "device_changes"]
"""``attempts``: the processes that trained an ended run (its start and each resume; empty where
provenance.json does not say); ``code_changes``: what differed in the code between them ('; '-joined,
empty for one code), ``device_changes``: in the kind of device (``device: auto`` resumed on a
machine with or without a GPU): :func:`gorl.provenance.attempts_summary`."""
PROBLEM_COLUMNS = ["algorithm", "task", "seed", "status", "reason", "run_dir"]
DIVERGED_POLICIES = ("last_eval", "zero")
NOT_IN_CONFIG = "not in the config (algorithms x tasks x seeds): left out of every table"

run_dir = rundir.run_path
discover = rundir.discover


def _keys(runs: Iterable) -> list[tuple[str, str, int]]:
    return list(dict.fromkeys((str(a), str(t), int(s)) for a, t, s in runs))


def ignored_runs(root: Path, expected: Iterable[tuple[str, str, int]] | None) -> pd.DataFrame:
    """Run directories under ``root`` that ``expected`` does not name (none if expected is None)."""
    if expected is None:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    want = set(_keys(expected))
    rows = [dict(algorithm=a, task=t, seed=s, status=rundir.IGNORED, reason=NOT_IN_CONFIG,
                 run_dir=str(run_dir(root, a, t, s))) for a, t, s in discover(root) if (a, t, s) not in want]
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def collect(root: Path, expected: Iterable[tuple[str, str, int]] | None = None,
            diverged_policy: str = "last_eval") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the ``expected`` runs under ``root`` (every run found there if None) -> (tidy, finals).

    ``tidy``: one row per evaluation of every such run that has evaluations (any status).
    ``finals``: one row per such run, with status and final score. Runs on disk that
    ``expected`` does not name are in neither (see :func:`ignored_runs`).
    """
    if diverged_policy not in DIVERGED_POLICIES:
        raise ValueError(f"diverged_policy must be one of {DIVERGED_POLICIES}, got {diverged_policy!r}")
    keys = _keys(discover(root) if expected is None else expected)
    tidy_parts, finals = [], []
    for algo, task, seed in keys:
        d = run_dir(root, algo, task, seed)
        st = rundir.read_status(d)
        ev = rundir.read_evals(d) if d.exists() else None
        if st is not None:
            status = str(st.get("status", rundir.FAILED))
            reason = st.get("reason")
        elif ev is not None:
            status, reason = rundir.INCOMPLETE, f"no {rundir.STATUS} (run killed or still running)"
        else:
            status = rundir.MISSING
            reason = "no run directory" if not d.exists() else f"no {rundir.STATUS} and no evaluations"
        row = dict(algorithm=algo, task=task, seed=seed, status=status, included=False,
                   diverged=status == rundir.DIVERGED, final_env_step=np.nan, final_return=np.nan,
                   final_normalized=np.nan, n_evals=0,
                   env_steps=(st or {}).get("env_steps", np.nan), reason=reason, run_dir=str(d),
                   attempts=np.nan, code_changes="", device_changes="")
        if st is not None:
            tried = attempts_summary(rundir.read_provenance(d))
            row["attempts"] = np.nan if tried["attempts"] is None else tried["attempts"]
            row["code_changes"] = "; ".join(tried["code_changes"])
            row["device_changes"] = "; ".join(tried["device_changes"])
        if ev is not None:
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
            if status in (rundir.COMPLETED, rundir.DIVERGED) and len(finite):  # gated: no final score
                last = finite.iloc[-1]
                row["final_env_step"] = int(last["env_step"])
                row["final_return"] = float(last["return"])
                row["included"] = True
        if status == rundir.DIVERGED:
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


def mixed_attempts(finals: pd.DataFrame) -> pd.DataFrame:
    """Runs resumed under other code than they started with (a `git pull` or an upgrade between a
    stop and the resume) or on another kind of device: kept in every table, listed by the
    aggregation's log."""
    changed = [finals[c].fillna("").astype(str) != "" for c in ("code_changes", "device_changes")]
    return finals.loc[changed[0] | changed[1], ["algorithm", "task", "seed", "attempts", "code_changes",
                                                "device_changes"]]


def problems(finals: pd.DataFrame, ignored: pd.DataFrame | None = None) -> pd.DataFrame:
    """Runs without a usable final score (failed / incomplete / missing), then the ignored ones."""
    parts = [finals.loc[~finals["included"], PROBLEM_COLUMNS]]
    if ignored is not None and len(ignored):
        parts.append(ignored[PROBLEM_COLUMNS])
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def save(tidy: pd.DataFrame, finals: pd.DataFrame, out: dict[str, Path],
         ignored: pd.DataFrame | None = None) -> None:
    """Write tidy (parquet + csv), finals (csv) and problem runs (csv, ignored runs included)."""
    for k, p in out.items():
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    tidy.to_parquet(out["tidy_parquet"], index=False)
    tidy.to_csv(out["tidy_csv"], index=False)
    finals.to_csv(out["finals"], index=False)
    problems(finals, ignored).to_csv(out["problems"], index=False)


def read_probes(root: Path, algorithm: str, task: str, seed: int) -> dict[str, np.ndarray] | None:
    return rundir.read_probes(run_dir(root, algorithm, task, seed))
