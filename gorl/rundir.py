"""The run-directory contract: every algorithm writes the same files, atomically.

    DIR/config.yaml        resolved configuration (algorithm, task, seed, preset, hyperparameters)
    DIR/evals.csv          env_step, return_mean, return_std, episodes, stage, wall_time
    DIR/metrics.csv        one row per training iteration (env_step, sps, losses, ...)
    DIR/probes.npz         action probes: states (P, d_o), env_step (E,), actions (E, P, K, d_a)
    DIR/provenance.json    package versions, git commit, seed, device, command, wall time
    DIR/checkpoint.pt      latest checkpoint (resume point); not a pipeline output
    DIR/status.json        written last: {"status": "completed" | "diverged", "reason", ...}

``status.json`` exists only once a run has ended; it is the file the pipeline waits for.
Every file is written to a temporary file in DIR and renamed into place.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

CONFIG = "config.yaml"
EVALS = "evals.csv"
METRICS = "metrics.csv"
PROBES = "probes.npz"
PROVENANCE = "provenance.json"
CHECKPOINT = "checkpoint.pt"
STATUS = "status.json"

EVAL_COLUMNS = ("env_step", "return_mean", "return_std", "episodes", "stage", "wall_time")
FINAL_STATUSES = ("completed", "diverged")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_yaml(path: Path, obj: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Iterable[str] | None = None) -> None:
    rows = list(rows)
    if columns is None:
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)
    return v


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_status(run_dir: Path) -> dict | None:
    p = Path(run_dir) / STATUS
    if not p.exists():
        return None
    return json.loads(p.read_text())
