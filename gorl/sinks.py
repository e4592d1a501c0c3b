"""Where a run's scalars go besides its CSV files: TensorBoard (default) and W&B (optional).

``evals.csv`` and ``metrics.csv`` are the record (:mod:`gorl.rundir`); a sink is a view of
the same numbers for watching a run live. Every sink has one interface, :class:`Sink`, and
:class:`gorl.core.run.Run` calls them; a sink that raises is dropped for the rest of the
run with one log line, so a sink can never stop training nor change a result (sinks only
read the numbers, after they are in the CSV files).

Scalar names follow CleanRL's: ``charts/episodic_return`` (the evaluation's mean return),
``charts/SPS``, ``charts/stage``, ``losses/<name>`` for every loss and training statistic the
algorithm logs, ``time/<name>`` for timings; the x axis is the global env step.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol

WANDB_MODES = ("offline", "online")

# metrics.csv columns -> TensorBoard names (everything else numeric goes to losses/<name>)
_CHARTS = {"sps": "charts/SPS", "train_episode_return": "charts/train_episodic_return",
           "stage": "charts/stage", "iteration": "charts/iteration", "physics_errors": "charts/physics_errors"}
_TIME = ("rollout_s", "update_s", "wall_time")
_SKIP = ("env_step",)


def scalar_names(row: Mapping[str, Any], kind: str) -> dict[str, float]:
    """A metrics.csv (``kind`` 'metrics') or evals.csv ('eval') row as named scalars."""
    out: dict[str, float] = {}
    if kind == "eval":
        out["charts/episodic_return"] = float(row["return_mean"])
        out["charts/episodic_return_std"] = float(row["return_std"])
        out["charts/eval_stage"] = float(row["stage"])
        return out
    for k, v in row.items():
        if k in _SKIP or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        name = _CHARTS.get(k) or (f"time/{k}" if k in _TIME else f"losses/{k}")
        out[name] = float(v)
    return out


class Sink(Protocol):
    """Receives the run's scalars (global env step, {name: value}); closed at the end."""

    name: str

    def scalars(self, step: int, values: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    """Event files under ``RUN/tensorboard/`` (``tensorboard --logdir RUN``). A resumed run
    purges the events after its resume point, so the curves show each step once."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        from gorl.rundir import TENSORBOARD
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD), purge_step=purge_step or None,
                                    flush_secs=30)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, global_step=int(step))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    """A W&B run (``--wandb offline|online``; files under ``RUN/wandb/``), resumed by the run's
    directory name on an interrupted run. ``pip install wandb`` (the ``wandb`` extra)."""

    name = "wandb"

    def __init__(self, run_dir: Path, mode: str, config: dict, name: str):
        import wandb  # checked by require_wandb before training starts

        from gorl.rundir import WANDB
        d = Path(run_dir) / WANDB
        d.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project="gorl-bench", mode=mode, dir=str(d), config=config, name=name,
                              id=_wandb_id(run_dir), resume="allow")

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self.run.log(dict(values), step=int(step))

    def close(self) -> None:
        self.run.finish()


def _wandb_id(run_dir: Path) -> str:
    import hashlib
    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]


def require_wandb(mode: str) -> None:
    """``--wandb MODE`` checked before any env is built: one line if W&B is not installed."""
    from gorl.errors import BadInput
    if mode not in WANDB_MODES:
        raise BadInput(f"--wandb must be one of {WANDB_MODES}, got {mode!r}")
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise BadInput("--wandb needs the wandb package, which is not installed: pip install wandb "
                       "(or pip install 'gorl-bench[wandb]'); W&B is optional, TensorBoard files are "
                       "written without it") from None
