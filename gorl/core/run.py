"""One training run: its directory, seeding, envs, checkpoint, logs and final status.

Algorithms receive a :class:`Run` and never touch file names themselves, so every
algorithm honours the same run-directory contract (:mod:`gorl.rundir`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gorl import rundir
from gorl.envs import env_dims, make_envs


class Diverged(RuntimeError):
    """Raised by an algorithm when losses or parameters become non-finite."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def env_seeds(seed: int, stream: int, n: int) -> list[int]:
    """Per-env seeds derived from the run seed and a stream id (train envs, eval k, ...)."""
    return [int(s) for s in np.random.SeedSequence([seed, stream]).generate_state(n)]


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` written atomically (temp file, then rename), like every run-dir file."""
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    rundir.atomic_write_bytes(path, buf.getvalue())


TRAIN_STREAM = 0
EVAL_STREAM = 1_000_000  # + evaluation index


@dataclass
class Run:
    algo: str
    task: str
    seed: int
    preset: str
    dir: Path
    config: dict[str, Any]
    device: torch.device = torch.device("cpu")
    quiet: bool = False
    started: float = field(default_factory=time.time)
    wall_time_before: float = 0.0
    """Wall time spent by earlier (interrupted) attempts of this run, from the checkpoint."""
    env_steps_done: int = 0
    """Global env steps trained so far (kept current by the trainer; reported on divergence)."""
    extra_status: dict[str, Any] = field(default_factory=dict)
    """Algorithm-specific facts added to status.json (e.g. GoRL's data-collection env steps)."""

    # -- envs -----------------------------------------------------------------------
    def make_envs(self, n: int, stream: int = TRAIN_STREAM, workers: int = 0):
        """``n`` envs seeded from the run seed and ``stream``, speaking torch on the run's device
        (host envs sharded over ``workers`` processes when > 0)."""
        return make_envs(self.task, env_seeds(self.seed, stream, n), self.device, workers,
                         self.config.get("imports") or ())

    def env_dims(self) -> tuple[int, int]:
        """(observation dim, action dim) of the run's task."""
        return env_dims(self.task)

    # -- files ----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.dir / rundir.CHECKPOINT

    def wall_time(self) -> float:
        return self.wall_time_before + time.time() - self.started

    def save_checkpoint(self, state: dict) -> None:
        save_torch(self.checkpoint_path, dict(state, wall_time=self.wall_time()))

    def load_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.exists():
            return None
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        self.wall_time_before = float(state.get("wall_time", 0.0))
        self.started = time.time()
        return state

    def write_evals(self, rows: list[dict]) -> None:
        rundir.write_csv(self.dir / rundir.EVALS, rows, rundir.EVAL_COLUMNS)

    def write_metrics(self, rows: list[dict]) -> None:
        rundir.write_csv(self.dir / rundir.METRICS, rows)

    def write_probes(self, states: np.ndarray, steps: list[int], actions: list[np.ndarray]) -> None:
        rundir.write_npz(self.dir / rundir.PROBES, states=states, env_step=np.asarray(steps, np.int64),
                         actions=np.stack(actions) if actions else
                         np.zeros((0, states.shape[0], 0, 0), np.float32))

    def finish(self, status: str, env_steps: int, reason: str | None = None, **extra) -> None:
        from gorl.provenance import provenance
        rundir.write_json(self.dir / rundir.PROVENANCE,
                          provenance(self, wall_time=self.wall_time()))
        rundir.write_json(self.dir / rundir.STATUS,
                          {"status": status, "reason": reason, "env_steps": int(env_steps),
                           "algorithm": self.algo, "task": self.task, "seed": self.seed,
                           **self.extra_status, **extra})

    def log(self, msg: str) -> None:
        if not self.quiet:
            from tqdm import tqdm
            tqdm.write(msg)
        else:
            print(msg, flush=True)
