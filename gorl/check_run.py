"""``gorl-bench check-run DIR``: validate a run directory against the contract.

The contract every algorithm honours (built-in or third-party) is documented in
docs/adding-a-baseline.md and in :mod:`gorl.rundir`. Each problem found is one line
naming the file and what is wrong with it.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import yaml

from gorl import rundir

PROVENANCE_KEYS = ("algorithm", "task", "seed", "device", "wall_time_s", "git_commit", "versions")
CONFIG_KEYS = ("algorithm", "task", "seed", "preset", "hyperparameters")


def _missing(d: Path, name: str, problems: list[str]) -> bool:
    if not (d / name).is_file():
        problems.append(f"missing {name}")
        return True
    return False


def _check_status(d: Path, problems: list[str]) -> dict | None:
    if _missing(d, rundir.STATUS, problems):
        return None
    try:
        st = json.loads((d / rundir.STATUS).read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{rundir.STATUS}: not valid JSON ({e})")
        return None
    if st.get("status") not in rundir.FINAL_STATUSES:
        problems.append(f"{rundir.STATUS}: 'status' must be one of {rundir.FINAL_STATUSES}, got {st.get('status')!r}")
    if not isinstance(st.get("env_steps"), int) or st["env_steps"] < 0:
        problems.append(f"{rundir.STATUS}: 'env_steps' must be a non-negative integer")
    if st.get("status") == "diverged" and not st.get("reason"):
        problems.append(f"{rundir.STATUS}: a diverged run must give a 'reason'")
    return st


def _check_evals(d: Path, problems: list[str], status: dict | None) -> int:
    if _missing(d, rundir.EVALS, problems):
        return 0
    with open(d / rundir.EVALS, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        rows = list(reader)
    absent = [c for c in rundir.EVAL_COLUMNS if c not in cols]
    if absent:
        problems.append(f"{rundir.EVALS}: missing columns {absent}")
        return 0
    if not rows:
        problems.append(f"{rundir.EVALS}: no evaluation rows")
        return 0
    prev = -1
    for i, r in enumerate(rows, start=2):
        try:
            step, ret, n = int(r["env_step"]), float(r["return_mean"]), int(r["episodes"])
            float(r["return_std"]), int(r["stage"])
        except ValueError:
            problems.append(f"{rundir.EVALS}: line {i} is not numeric: {r}")
            continue
        if step < prev:
            problems.append(f"{rundir.EVALS}: line {i}: env_step {step} goes backwards (previous {prev})")
        if not math.isfinite(ret):
            problems.append(f"{rundir.EVALS}: line {i}: return_mean is not finite")
        if n <= 0:
            problems.append(f"{rundir.EVALS}: line {i}: episodes must be positive")
        prev = step
    if status and isinstance(status.get("env_steps"), int) and prev > status["env_steps"]:
        problems.append(f"{rundir.EVALS}: last env_step {prev} is beyond status env_steps {status['env_steps']}")
    return len(rows)


def _check_probes(d: Path, problems: list[str], n_evals: int) -> None:
    if _missing(d, rundir.PROBES, problems):
        return
    try:
        z = np.load(d / rundir.PROBES)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a problem to report
        problems.append(f"{rundir.PROBES}: unreadable ({e})")
        return
    for key in ("states", "env_step", "actions"):
        if key not in z.files:
            problems.append(f"{rundir.PROBES}: missing array {key!r}")
    if problems and any(p.startswith(rundir.PROBES) for p in problems):
        return
    states, steps, acts = z["states"], z["env_step"], z["actions"]
    if states.ndim != 2:
        problems.append(f"{rundir.PROBES}: 'states' must be (P, obs_dim), got shape {states.shape}")
    if acts.ndim != 4 or acts.shape[0] != steps.shape[0] or (states.ndim == 2 and acts.shape[1] != states.shape[0]):
        problems.append(f"{rundir.PROBES}: 'actions' must be (E, P, K, act_dim) with E = len(env_step) and "
                        f"P = len(states); got {acts.shape}, {steps.shape}, {states.shape}")
    elif acts.size and (np.abs(acts) > 1.0 + 1e-6).any():
        problems.append(f"{rundir.PROBES}: 'actions' must be env actions in [-1, 1]")
    if n_evals and steps.shape[0] != n_evals:
        problems.append(f"{rundir.PROBES}: {steps.shape[0]} probe snapshots but {n_evals} evaluations")


def _check_yaml_json(d: Path, problems: list[str]) -> None:
    if not _missing(d, rundir.CONFIG, problems):
        try:
            cfg = yaml.safe_load((d / rundir.CONFIG).read_text()) or {}
            absent = [k for k in CONFIG_KEYS if k not in cfg]
            if absent:
                problems.append(f"{rundir.CONFIG}: missing keys {absent}")
        except yaml.YAMLError as e:
            problems.append(f"{rundir.CONFIG}: not valid YAML ({e})")
    if not _missing(d, rundir.PROVENANCE, problems):
        try:
            prov = json.loads((d / rundir.PROVENANCE).read_text())
            absent = [k for k in PROVENANCE_KEYS if k not in prov]
            if absent:
                problems.append(f"{rundir.PROVENANCE}: missing keys {absent}")
        except json.JSONDecodeError as e:
            problems.append(f"{rundir.PROVENANCE}: not valid JSON ({e})")


def check_run(run_dir: Path) -> list[str]:
    d = Path(run_dir)
    if not d.is_dir():
        return [f"not a directory"]
    problems: list[str] = []
    _check_yaml_json(d, problems)
    status = _check_status(d, problems)
    n = _check_evals(d, problems, status)
    _missing(d, rundir.METRICS, problems)
    _check_probes(d, problems, n)
    _missing(d, rundir.CHECKPOINT, problems)
    return problems
