"""One training run: its directory, seeding, envs, checkpoint, logs, sinks, policies and status.

Algorithms receive a :class:`Run` and never touch file names themselves, so every
algorithm honours the same run-directory contract (:mod:`gorl.rundir`). The run owns the
one logger (:meth:`Run.log`: a line per evaluation and per algorithm event, also under
``--quiet``), the sinks (:mod:`gorl.sinks`), the saved policies (:meth:`Run.save_policy`,
read back by :func:`gorl.load_policy`) and the stop request of SIGTERM/SIGINT
(:meth:`Run.stop_if_requested`, checked by the trainers at their safe points).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gorl import rundir
from gorl.envs import env_dims, make_envs
from gorl.errors import Diverged  # noqa: F401  (re-exported: algorithms raise gorl.core.run.Diverged)
from gorl.errors import BadInput, Interrupted


def resolve_device(name: str) -> torch.device:
    """The run's torch device: ``auto`` is cuda where torch sees a GPU, else cpu. A device torch
    cannot use here is a one-line :class:`BadInput` naming the key, raised before training."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BadInput(f"device: {name!r} is not a torch device (cpu, cuda, cuda:K or auto)") from None
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            build = "a CPU build of torch" if torch.version.cuda is None else "no CUDA GPU visible"
            raise BadInput(f"device: {name!r} but torch {torch.__version__} sees no GPU here ({build}); "
                           f"use device=cpu or device=auto")
        if device.index is not None and device.index >= n:
            raise BadInput(f"device: {name!r} but torch sees {n} GPU(s) (cuda:0 to cuda:{n - 1})")
    return device


def env_seeds(seed: int, stream: int, n: int) -> list[int]:
    """Per-env seeds derived from the run seed and a stream id (train envs, eval k, ...)."""
    return [int(s) for s in np.random.SeedSequence([seed, stream]).generate_state(n)]


def rng_state() -> dict:
    """Every generator a run draws from: torch's CPU generator, its CUDA generators once CUDA is
    in use (rollout noise and minibatch permutations on a GPU), numpy's global one. Envs keep
    their own RNGs and JAX keys in their state."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "numpy": np.random.get_state()}


def set_rng_state(st: dict | torch.Tensor) -> None:
    """Restore :func:`rng_state` (a bare tensor: an older checkpoint's CPU state alone)."""
    if isinstance(st, torch.Tensor):
        st = {"torch": st}
    torch.set_rng_state(st["torch"])
    if st.get("cuda") is not None and torch.cuda.is_available():
        for i, s in enumerate(st["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    if st.get("numpy") is not None:
        np.random.set_state(st["numpy"])


def torch_bytes(obj: Any) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` written atomically (temp file, then rename), like every run-dir file."""
    rundir.atomic_write_bytes(path, torch_bytes(obj))


@dataclass
class Records:
    """A run's evaluations, per-iteration metrics and probe snapshots (the run owns them).

    Appended through :class:`Run` (``append_eval``/``append_metrics``/``append_probes``),
    which rewrites the matching file atomically; saved in, and restored from, every
    checkpoint, so the files always agree with the state a resume continues from.
    """

    evals: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    probe_states: np.ndarray | None = None
    probe_steps: list[int] = field(default_factory=list)
    probe_actions: list[np.ndarray] = field(default_factory=list)

    def state_dict(self) -> dict:
        return {"evals": self.evals, "metrics": self.metrics, "probe_states": self.probe_states,
                "probe_steps": self.probe_steps, "probe_actions": self.probe_actions}

    @classmethod
    def from_state(cls, st: dict) -> "Records":
        return cls(**{k: st[k] for k in ("evals", "metrics", "probe_states", "probe_steps", "probe_actions")})


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
    rollout: str | None = None
    """The rollout path the trainer took, stated in provenance.json: 'scan' (each iteration one
    JAX program) or 'step' (one policy call and one env call per env step); None before a trainer
    exists, and for a plug-in trainer that does not say."""
    extra_status: dict[str, Any] = field(default_factory=dict)
    """Algorithm-specific facts added to status.json (e.g. GoRL's data-collection env steps)."""
    records: Records = field(default_factory=Records)
    """Everything appended so far to evals.csv, metrics.csv and probes.npz."""
    total_steps: int | None = None
    """The effective env-step budget (whole iterations), for the evaluation lines' ETA."""
    sinks: list = field(default_factory=list)
    """:class:`gorl.sinks.Sink` objects that receive every evaluation and metrics row."""
    stop_requested: int | None = None
    """The signal (SIGTERM/SIGINT) asking the run to stop at its next safe point."""
    trust_checkpoint: bool = False
    """Resume from a checkpoint that holds pickled objects (``train --trust-checkpoint``: an older
    version's checkpoint the user wrote); otherwise such a checkpoint is refused."""
    _pickled_checkpoints: bool = False
    """A trusted resume found checkpoint files holding pickled objects (:meth:`replace_pickled_checkpoints`)."""
    earlier_attempts: list[dict] = field(default_factory=list)
    """The processes that trained this run before this one (:func:`gorl.provenance.attempt`), from
    the checkpoint; empty for a first start (and for a checkpoint written before they were kept)."""
    _attempt: dict | None = None
    """This process's attempt: made by a resume (:meth:`load_checkpoint`), else at the first need."""
    _rate_mark: tuple[int, float] | None = None
    _eager_cuda_noted: bool = False
    """The note that the update runs eagerly on CUDA was printed (once per run, not per trainer)."""

    # -- the one logger and the sinks ---------------------------------------------------------
    def log(self, msg: str) -> None:
        """One line to the console (above the progress bar; plain under --quiet, where the
        pipeline's job logs collect it)."""
        if not self.quiet:
            from tqdm import tqdm
            tqdm.write(msg)
        else:
            print(msg, flush=True)

    def open_sinks(self, tensorboard: bool = True, wandb: str | None = None) -> None:
        """TensorBoard event files in the run directory (default) and W&B (``--wandb MODE``).
        A sink that cannot start is reported in one line and left out; training goes on."""
        from gorl import sinks
        makers = []
        if tensorboard:
            makers.append(("tensorboard", lambda: sinks.TensorBoardSink(self.dir, purge_step=self.env_steps_done)))
        if wandb:
            makers.append(("wandb", lambda: sinks.WandbSink(self.dir, wandb, self.config,
                                                             f"{self.algo}-{self.task}-s{self.seed}")))
        for name, make in makers:
            try:
                self.sinks.append(make())
            except Exception as e:  # noqa: BLE001 - a sink never stops training
                self.log(f"{name} sink off: it failed to start ({rundir._first_line(e)})")

    def emit(self, step: int, values: dict[str, float]) -> None:
        """Send scalars to every sink; a sink that raises is dropped with one log line."""
        for sink in list(self.sinks):
            try:
                sink.scalars(step, values)
            except Exception as e:  # noqa: BLE001 - a sink never stops training or changes results
                self.sinks.remove(sink)
                self.log(f"{getattr(sink, 'name', type(sink).__name__)} sink off for the rest of the run: "
                         f"{rundir._first_line(e)}")

    def close_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # noqa: BLE001
                self.log(f"{getattr(sink, 'name', type(sink).__name__)} sink failed to close: "
                         f"{rundir._first_line(e)}")
        self.sinks = []

    def _rate(self, env_step: int) -> float | None:
        """Env steps per wall second in this process since its first logged iteration."""
        if self._rate_mark is None:
            return None
        s0, t0 = self._rate_mark
        dt = time.time() - t0
        return (env_step - s0) / dt if dt > 0 and env_step > s0 else None

    def eval_line(self, row: dict) -> str:
        """The evaluation's log line: env steps, return, stage, steps/s, ETA."""
        step, total = int(row["env_step"]), self.total_steps
        if self._rate_mark is None:  # steps/s of this process from its first evaluation or iteration on
            self._rate_mark = (step, time.time())
        where = f"{step:,}" + (f"/{total:,} ({100 * step / total:.0f}%)" if total else "")
        sps = self._rate(step)
        eta = ""
        if sps and total and total > step:
            left = int((total - step) / sps)
            eta = f"  ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        return (f"eval  env step {where}  return {row['return_mean']:.1f} +- {row['return_std']:.1f} "
                f"({row['episodes']} episodes)  stage {row['stage']}  "
                f"{f'{sps:,.0f}' if sps else '-'} steps/s{eta}")

    # -- stopping -------------------------------------------------------------------------------
    def stop_if_requested(self) -> None:
        """At a safe point (the checkpoint just written): raise :class:`Interrupted` if a
        SIGTERM/SIGINT asked the run to stop."""
        if self.stop_requested is not None:
            import signal
            raise Interrupted(self.stop_requested, signal.Signals(self.stop_requested).name, self.env_steps_done)

    # -- envs -----------------------------------------------------------------------
    def make_envs(self, n: int, stream: int = TRAIN_STREAM, workers: int = 0, *,
                  fixed_initial: bool = False, time_limit: bool = True):
        """``n`` envs seeded from the run seed and ``stream``, speaking torch on the run's device
        (host envs sharded over ``workers`` processes when > 0). ``fixed_initial``: every env
        returns to its first (seeded) state when an episode ends (reset_mode fixed_initial,
        spec 2.3); ``time_limit`` False: never truncated (GoRL's reference collector, spec 6.3)."""
        envs = make_envs(self.task, env_seeds(self.seed, stream, n), self.device, workers,
                         self.config.get("imports") or ())
        if fixed_initial:
            envs.fix_initial_states()
        if not time_limit:
            envs.remove_time_limit()
        return envs

    def env_dims(self) -> tuple[int, int]:
        """(observation dim, action dim) of the run's task."""
        return env_dims(self.task)

    # -- records ------------------------------------------------------------------------
    def append_eval(self, row: dict) -> None:
        """One evaluation (the columns of :data:`gorl.rundir.EVAL_COLUMNS`) -> evals.csv,
        a log line and the sinks."""
        self.records.evals.append(row)
        rundir.write_evals(self.dir, self.records.evals)
        self.log(self.eval_line(row))
        self.emit(int(row["env_step"]), sinks_scalars(row, "eval"))

    def has_eval(self, env_step: int, stage: int) -> bool:
        return any(r["env_step"] == env_step and r["stage"] == stage for r in self.records.evals)

    def append_metrics(self, row: dict) -> None:
        """One training iteration's scalars (``env_step`` first) -> metrics.csv."""
        self.records.metrics.append(row)
        rundir.write_metrics(self.dir, self.records.metrics)
        if self._rate_mark is None:
            self._rate_mark = (int(row["env_step"]), time.time())
        self.emit(int(row["env_step"]), sinks_scalars(row, "metrics"))

    def append_probes(self, env_step: int, states: np.ndarray, actions: np.ndarray) -> None:
        """Action samples (P, K, d_a) at the run's probe states (P, d_o) -> probes.npz.

        The first call fixes the probe states of the whole run (GoRL's stages share them).
        """
        if self.records.probe_states is None:
            self.records.probe_states = np.asarray(states, np.float32)
        self.records.probe_steps.append(int(env_step))
        self.records.probe_actions.append(np.asarray(actions, np.float32))
        self.write_records(evals=False, metrics=False)

    def write_records(self, evals: bool = True, metrics: bool = True, probes: bool = True) -> None:
        r = self.records
        if evals:
            rundir.write_evals(self.dir, r.evals)
        if metrics:
            rundir.write_metrics(self.dir, r.metrics)
        if probes:
            rundir.write_probes(self.dir, r.probe_states, r.probe_steps, r.probe_actions)

    # -- checkpoints ----------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.dir / rundir.CHECKPOINT

    def wall_time(self) -> float:
        return self.wall_time_before + time.time() - self.started

    def attempts(self) -> list[dict]:
        """Every process that trained this run, this one last (provenance.json's ``attempts``):
        the env step each started from (that of the last iteration it found done; 0 for the
        first), when, where, and the code that ran it."""
        if self._attempt is None:  # a first start, from env step 0
            from gorl.provenance import attempt
            self._attempt = attempt(0, self.started, self.device)
        return [*self.earlier_attempts, self._attempt]

    def save_checkpoint(self, state: dict) -> None:
        """The algorithm's state plus the run's records, wall time and attempts, as tensors and
        plain data (:func:`gorl.plaindata.encode`: numpy arrays and generators included); the
        previous checkpoint is kept until this one is complete (:func:`gorl.rundir.save_checkpoint`)."""
        from gorl import plaindata
        state = dict(state, records=self.records.state_dict(), wall_time=self.wall_time(),
                     attempts=self.attempts())
        rundir.save_checkpoint(self.dir, torch_bytes(plaindata.encode(state, "checkpoint")))

    def load_checkpoint(self) -> dict | None:
        """The algorithm's state from the newest usable checkpoint (None: start from scratch).

        Read with ``torch.load(weights_only=True)``: a checkpoint holding pickled objects (an
        older version's, or a planted one) is refused with a one-line
        :class:`gorl.rundir.UnsafeCheckpoint` and nothing in it runs, unless
        ``trust_checkpoint`` (``train --trust-checkpoint``) says the user wrote it. Restores the
        records and rewrites their files from them, so that evals.csv, metrics.csv and
        probes.npz continue exactly from the resume point. Raises
        :class:`gorl.errors.RunDirError` if no checkpoint present is usable.
        """
        from gorl import plaindata

        def load(path: Path) -> dict:
            st = rundir.read_checkpoint_file(path, self.trust_checkpoint)
            if not isinstance(st, dict) or "records" not in st:
                raise ValueError("not a checkpoint of this version of GoRL-Bench (no records)")
            return plaindata.decode(st)

        state = rundir.load_checkpoint(self.dir, load, self.log)
        if state is None:
            return None
        self._pickled_checkpoints = self.trust_checkpoint and bool(rundir.pickled_checkpoints(self.dir))
        self.records = Records.from_state(state.pop("records"))
        self.write_records()
        self.wall_time_before = float(state.get("wall_time", 0.0))
        self.started = time.time()
        from gorl.provenance import attempt, attempt_changes
        self.earlier_attempts = list(state.pop("attempts", None) or [])
        done = max((int(r["env_step"]) for r in self.records.metrics if "env_step" in r), default=0)
        self._attempt = attempt(done, self.started, self.device)
        changed = attempt_changes(self.earlier_attempts[-1], self._attempt) if self.earlier_attempts else {}
        for what, kind in (("runs other code", "code_changes"), ("runs on another kind of device", "device_changes")):
            changes = changed.get(kind)
            if changes:
                self.log(f"warning: this resume {what} than the run's previous attempt "
                         f"({'; '.join(changes)}): the run mixes the two from env step {done:,} "
                         f"(provenance.json lists its attempts)")
        return state

    def replace_pickled_checkpoints(self, state: Callable[[], dict]) -> None:
        """Called by every algorithm right after its resume restored the checkpoint into its live
        objects. After a trusted resume (``trust_checkpoint``) from a directory whose checkpoint.pt
        or checkpoint.prev.pt holds pickled objects (an older version's), both are written anew
        from ``state()`` (the live objects, as every checkpoint is; never the loaded data) through
        :meth:`save_checkpoint`, so that a run that ends without another checkpoint leaves none
        that ``check-run`` reports or a later resume refuses. Two saves: the first makes
        checkpoint.pt plain data (the pickled one becomes checkpoint.prev.pt), the second replaces
        that one; a kill at any point leaves a loadable checkpoint. Otherwise does nothing."""
        if not self._pickled_checkpoints:
            return
        st = state()
        self.save_checkpoint(st)
        self.save_checkpoint(st)
        self._pickled_checkpoints = False
        self.log(f"rewrote {rundir.CHECKPOINT} and {rundir.CHECKPOINT_PREVIOUS} as tensors and plain data "
                 f"(they held pickled objects)")

    # -- policies (gorl.load_policy) ------------------------------------------------------------
    def save_policy(self, which: str, state: dict) -> None:
        """policy_final.pt / policy_best.pt: ``state`` (:func:`gorl.policy.policy_state`: state
        dicts, numbers, strings) plus who made it; tensors and plain data only."""
        if "eval_return" not in state:  # the evaluation of this very policy, if there was one
            rows = [r for r in self.records.evals
                    if r["env_step"] == state["env_step"] and r["stage"] == state.get("stage", 0)]
            if rows:
                state = dict(state, eval_return=float(rows[-1]["return_mean"]))
        state = dict(state, format=1, which=which, algorithm=self.algo, task=self.task, seed=self.seed)
        save_torch(self.dir / rundir.POLICIES[which], state)

    def offer_best_policy(self, row: dict, state) -> None:
        """Called with an evaluation row before it is appended: if its return is the best of
        the run so far (ties: the later one), ``state()`` becomes policy_best.pt."""
        best = max((r["return_mean"] for r in self.records.evals), default=-np.inf)
        if row["return_mean"] >= best - 1e-6:
            self.save_policy("best", dict(state(), eval_return=float(row["return_mean"]),
                                          env_step=int(row["env_step"])))

    def finish(self, status: str, env_steps: int, reason: str | None = None, **extra) -> None:
        from gorl.provenance import provenance
        rundir.write_json(self.dir / rundir.PROVENANCE,
                          provenance(self, wall_time=self.wall_time()))
        rundir.write_status(self.dir, status, reason, int(env_steps), algorithm=self.algo, task=self.task,
                            seed=self.seed, **self.extra_status, **extra)


def sinks_scalars(row: dict, kind: str) -> dict[str, float]:
    from gorl.sinks import scalar_names
    return scalar_names(row, kind)
