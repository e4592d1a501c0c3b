"""``gorl-bench check-run DIR``: validate a run directory against the contract.

The contract every algorithm honours (built-in or third-party) is documented in
docs/adding-a-baseline.md and in :mod:`gorl.rundir`. Each problem found is one line
naming the file and the item (file, column, key, array) that is missing or malformed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

from gorl import rundir

from gorl.rundir import (CONFIG_KEYS, EVAL_COLUMNS, METRICS_COLUMNS, PROBE_ARRAYS,  # noqa: E402,F401
                         PROVENANCE_KEYS, REQUIRED_FILES, STATUS_KEYS)


def _missing(d: Path, name: str, problems: list[str]) -> bool:
    if not (d / name).is_file():
        problems.append(f"missing {name}")
        return True
    return False


def _absent_keys(name: str, obj, keys, problems: list[str]) -> bool:
    if not isinstance(obj, dict):
        problems.append(f"{name}: expected a mapping, got {type(obj).__name__}")
        return True
    absent = [k for k in keys if k not in obj]
    if absent:
        problems.append(f"{name}: missing keys {absent}")
    return False


def _load(d: Path, name: str, problems: list[str]):
    """Parse a .json or .yaml file of the run directory; None (and a problem) if absent or malformed."""
    if _missing(d, name, problems):
        return None
    text = (d / name).read_text()
    try:
        return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        problems.append(f"{name}: not valid JSON ({e})")
    except yaml.YAMLError as e:
        problems.append(f"{name}: not valid YAML ({e})")
    return None


def _check_config(d: Path, problems: list[str]) -> dict | None:
    cfg = _load(d, rundir.CONFIG, problems)
    if cfg is None:
        return None
    if _absent_keys(rundir.CONFIG, cfg, CONFIG_KEYS, problems):
        return None
    if "hyperparameters" in cfg and not isinstance(cfg["hyperparameters"], dict):
        problems.append(f"{rundir.CONFIG}: 'hyperparameters' must be a mapping")
    return cfg


def _check_provenance(d: Path, problems: list[str]) -> None:
    prov = _load(d, rundir.PROVENANCE, problems)
    if prov is None:
        return
    _absent_keys(rundir.PROVENANCE, prov, PROVENANCE_KEYS, problems)


def _check_status(d: Path, problems: list[str], cfg: dict | None) -> dict | None:
    st = _load(d, rundir.STATUS, problems)
    if st is None:
        return None
    if _absent_keys(rundir.STATUS, st, STATUS_KEYS, problems):
        return None
    if "status" in st and st["status"] not in rundir.FINAL_STATUSES:
        problems.append(f"{rundir.STATUS}: 'status' must be one of {rundir.FINAL_STATUSES}, got {st['status']!r}")
    if "env_steps" in st and (not isinstance(st["env_steps"], int) or isinstance(st["env_steps"], bool)
                              or st["env_steps"] < 0):
        problems.append(f"{rundir.STATUS}: 'env_steps' must be a non-negative integer, got {st['env_steps']!r}")
    if st.get("status") in (rundir.DIVERGED, rundir.GATED) and not st.get("reason"):
        problems.append(f"{rundir.STATUS}: a {st['status']} run must give a 'reason'")
    if cfg is not None:
        for k in ("algorithm", "task", "seed"):
            if k in st and k in cfg and st[k] != cfg[k]:
                problems.append(f"{rundir.STATUS}: '{k}' is {st[k]!r} but {rundir.CONFIG} says {cfg[k]!r}")
    return st


def _read_csv(d: Path, name: str, columns, problems: list[str]) -> list[dict] | None:
    """Rows as written (strings), through the run directory's one CSV reader (gorl.rundir)."""
    if _missing(d, name, problems):
        return None
    df = rundir.read_csv(d, name, raw=True)
    if df is None:
        problems.append(f"{name}: not a readable CSV file")
        return None
    absent = [c for c in columns if c not in df.columns]
    if absent:
        problems.append(f"{name}: missing columns {absent}")
        return None
    return df.to_dict("records")


def _final(status: dict | None) -> tuple[str | None, int | None]:
    if not status:
        return None, None
    steps = status.get("env_steps")
    return status.get("status"), steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _check_evals(d: Path, problems: list[str], status: dict | None,
                 cfg: dict | None = None) -> list[int] | None:
    """Returns the env_step column (None if unusable)."""
    rows = _read_csv(d, rundir.EVALS, rundir.EVAL_COLUMNS, problems)
    if rows is None:
        return None
    if not rows:
        if (status or {}).get("status") != rundir.GATED:  # gated before its first stage: no evaluation
            problems.append(f"{rundir.EVALS}: no evaluation rows")
        return None
    steps: list[int] = []
    for i, r in enumerate(rows, start=2):
        try:
            for col, typ in EVAL_COLUMNS.items():
                typ(r[col])
            step, ret, n = int(r["env_step"]), float(r["return_mean"]), int(r["episodes"])
        except (TypeError, ValueError):
            problems.append(f"{rundir.EVALS}: line {i} is not numeric: {r}")
            return None
        if steps and step < steps[-1]:
            problems.append(f"{rundir.EVALS}: line {i}: env_step {step} goes backwards (previous {steps[-1]})")
        if not math.isfinite(ret):
            problems.append(f"{rundir.EVALS}: line {i}: return_mean is not finite")
        if n <= 0:
            problems.append(f"{rundir.EVALS}: line {i}: episodes must be positive")
        steps.append(step)
    start = (status or {}).get("start_env_step", 0)  # GoRL's benchmark anchor (HumanoidRun: 60M)
    if steps[0] != start:
        problems.append(f"{rundir.EVALS}: the first evaluation must be before any update (env_step {start}), "
                        f"got env_step {steps[0]}")
    state, total = _final(status)
    if total is not None and steps[-1] > total:
        problems.append(f"{rundir.EVALS}: last env_step {steps[-1]} is beyond status env_steps {total}")
    elif state == rundir.COMPLETED and total is not None and steps[-1] != total and not _reference_evals(cfg):
        problems.append(f"{rundir.EVALS}: a completed run must end with an evaluation at its final env step "
                        f"{total}, last env_step is {steps[-1]}")
    return steps


def _reference_evals(cfg: dict | None) -> bool:
    """The reference's evaluation schedule never evaluates after the last update (spec 1.4)."""
    hp = (cfg or {}).get("hyperparameters")
    return isinstance(hp, dict) and hp.get("eval_schedule") == "reference"


def _check_metrics(d: Path, problems: list[str], status: dict | None) -> None:
    rows = _read_csv(d, rundir.METRICS, METRICS_COLUMNS, problems)
    if rows is None:
        return
    state, total = _final(status)
    if not rows and state == rundir.COMPLETED:
        problems.append(f"{rundir.METRICS}: no rows (one per training iteration) in a completed run")
    prev = -1
    for i, r in enumerate(rows, start=2):
        try:
            step = int(r["env_step"])
        except (TypeError, ValueError):
            problems.append(f"{rundir.METRICS}: line {i}: env_step is not an integer: {r['env_step']!r}")
            return
        if step < prev:
            problems.append(f"{rundir.METRICS}: line {i}: env_step {step} goes backwards (previous {prev})")
        prev = step
    if total is not None and prev > total:
        problems.append(f"{rundir.METRICS}: last env_step {prev} is beyond status env_steps {total}")


def _check_probes(d: Path, problems: list[str], eval_steps: list[int] | None) -> None:
    if _missing(d, rundir.PROBES, problems):
        return
    try:
        z = np.load(d / rundir.PROBES)
        arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any unreadable file is a problem to report
        problems.append(f"{rundir.PROBES}: unreadable ({e})")
        return
    absent = [k for k in PROBE_ARRAYS if k not in arrays]
    if absent:
        problems.append(f"{rundir.PROBES}: missing arrays {absent}")
        return
    states, steps, acts = arrays["states"], arrays["env_step"], arrays["actions"]
    if states.ndim != 2:
        problems.append(f"{rundir.PROBES}: 'states' must be (P, obs_dim), got shape {states.shape}")
        return
    if steps.ndim != 1:
        problems.append(f"{rundir.PROBES}: 'env_step' must be (E,), got shape {steps.shape}")
        return
    if acts.ndim != 4 or acts.shape[0] != steps.shape[0] or acts.shape[1] != states.shape[0]:
        problems.append(f"{rundir.PROBES}: 'actions' must be (E, P, K, act_dim) with E = len(env_step) and "
                        f"P = len(states); got {acts.shape}, {steps.shape}, {states.shape}")
        return
    if acts.size and not np.isfinite(acts).all():
        problems.append(f"{rundir.PROBES}: 'actions' must be finite")
    elif acts.size and (np.abs(acts) > 1.0 + 1e-6).any():
        problems.append(f"{rundir.PROBES}: 'actions' must be env actions in [-1, 1]")
    if eval_steps is not None:
        if steps.shape[0] != len(eval_steps):
            problems.append(f"{rundir.PROBES}: {steps.shape[0]} probe snapshots but {len(eval_steps)} evaluations")
        elif [int(s) for s in steps] != eval_steps:
            problems.append(f"{rundir.PROBES}: 'env_step' {steps.tolist()} does not match {rundir.EVALS} "
                            f"env_step {eval_steps} (one snapshot per evaluation)")


def _check_checkpoint(d: Path, problems: list[str]) -> None:
    """checkpoint.pt must be readable with ``torch.load(weights_only=True)`` (tensors and plain
    data), through the one reader of checkpoints (:func:`gorl.rundir.read_checkpoint_file`), and
    checkpoint.prev.pt, where there is one, must not hold pickled objects either (train refuses to
    resume where either does; a damaged previous one is no problem while checkpoint.pt is good).
    Nothing in either file is unpickled, so a planted file runs nothing here."""
    def pickled(name: str, found: list[str]) -> str:
        return (f"{name}: holds pickled objects ({found[0]}), not only tensors and plain data (a checkpoint "
                f"of an older GoRL-Bench, or a planted file); train refuses to resume from it unless "
                f"{rundir.TRUST_CHECKPOINT}")

    if not _missing(d, rundir.CHECKPOINT, problems):
        try:
            rundir.read_checkpoint_file(d / rundir.CHECKPOINT)
        except rundir.UnsafeCheckpoint as e:
            problems.append(pickled(rundir.CHECKPOINT, e.found))
        except Exception as e:  # noqa: BLE001 - any unreadable file is a problem to report
            problems.append(f"{rundir.CHECKPOINT}: unreadable ({e})")
    for path, found in rundir.pickled_checkpoints(d):
        if path.name == rundir.CHECKPOINT_PREVIOUS:
            problems.append(pickled(path.name, found))


def check_run(run_dir: Path) -> list[str]:
    d = Path(run_dir)
    if not d.is_dir():
        return ["not a directory"]
    problems: list[str] = []
    cfg = _check_config(d, problems)
    _check_provenance(d, problems)
    status = _check_status(d, problems, cfg)
    eval_steps = _check_evals(d, problems, status, cfg)
    _check_metrics(d, problems, status)
    _check_probes(d, problems, eval_steps)
    _check_checkpoint(d, problems)
    return problems
