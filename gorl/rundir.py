"""The run-directory contract: the one definition of what a run writes and how it is read.

    {root}/{algorithm}/{task}/seed{seed}/       layout used by the pipeline (run_path)
        config.yaml        resolved configuration (algorithm, task, seed, preset, hyperparameters)
        evals.csv          EVAL_COLUMNS: one row per evaluation
        metrics.csv        one row per training iteration (env_step first, then any scalars)
        probes.npz         action probes: states (P, d_o), env_step (E,), actions (E, P, K, d_a)
        provenance.json    package versions, git commit, seed, device, command, wall time
        checkpoint.pt      latest checkpoint (resume point); not a pipeline output
        checkpoint.prev.pt the checkpoint before it, kept until the new one is complete
        policy_final.pt    the policy at the end of training (tensors and plain data; gorl.load_policy)
        policy_best.pt     the policy of the best evaluation so far (ties as `best_ties` says)
        tensorboard/       TensorBoard event files (the sinks of gorl.sinks; evals.csv stays the record)
        wandb/             W&B's files, with --wandb offline|online only
        status.json        written last: {"status": "completed" | "diverged" | "gated", "reason", ...}
        stages/stage<k>/   GoRL only: STAGE_FILES of stage k
        stages/teacher/    GoRL with a teacher: the teacher's dataset summary (TEACHER_FILES)
        teacher/           GoRL with a teacher it trained itself: the teacher's own run directory
        .lock              held by the process training into the directory (its PID inside)

``status.json`` exists only once a run has ended; it is the file the pipeline waits for.
Every file is written to a temporary file in the directory and renamed into place, with the
permissions the user's umask gives a new file (0644 under the usual 022).

Safe to read what others share: every file here holds only tensors and plain data (numbers,
strings, lists, dicts), and every reader loads it with ``torch.load(weights_only=True)``
(:func:`load_tensors`), which refuses anything else without running it. That includes
``checkpoint.pt``/``checkpoint.prev.pt``: the exact env state a resume continues from (MuJoCo
state arrays, task and Gymnasium env attributes, numpy RNG states, JAX leaves) is written as
tensors and plain data by :mod:`gorl.plaindata`. ``train`` resuming an ``--out`` whose
checkpoint holds pickled objects (an older version's checkpoint, or a planted file) refuses in
one line before it writes anything (:func:`refuse_pickled_checkpoints`), unless
``--trust-checkpoint`` says the user wrote it. Checkpoints are read only by ``train`` and by
``check-run`` (weights-only, :func:`read_checkpoint_file`: a pickled or damaged ``checkpoint.pt``
is a problem line), never by the analysis, ``show``, ``evaluate`` or ``load_policy``.

Everything else (the trainer, the CLI, ``check-run``, ``analysis/``, ``workflow/``) uses the
names, columns, statuses and readers defined here. To add a column to ``evals.csv``: add it
to :data:`EVAL_COLUMNS` (name and type) and put its value into the row the trainer passes to
:meth:`gorl.core.run.Run.append_eval`; the writer, ``check-run`` and the tidy table follow.
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import yaml

from gorl.errors import RunDirError

# -- file names ---------------------------------------------------------------------------
CONFIG = "config.yaml"
EVALS = "evals.csv"
METRICS = "metrics.csv"
PROBES = "probes.npz"
PROVENANCE = "provenance.json"
CHECKPOINT = "checkpoint.pt"
CHECKPOINT_PREVIOUS = "checkpoint.prev.pt"
STATUS = "status.json"
POLICY_FINAL = "policy_final.pt"
POLICY_BEST = "policy_best.pt"
POLICIES = {"final": POLICY_FINAL, "best": POLICY_BEST}
"""``gorl.load_policy(run, which)``: the file of each ``which``."""
TENSORBOARD = "tensorboard"
WANDB = "wandb"
LOCK = ".lock"
PIPELINE_REQUEST = ".pipeline_request.json"  # written by earlier pipelines (run identity is now config.yaml)
"""Written by the pipeline's training job (workflow/scripts/train.py): the arguments of the run."""
STAGES = "stages"

# GoRL's per-stage artifacts, under stages/stage<k>/
STAGE_DECODER = "decoder.pt"
STAGE_ENCODER_BEST = "encoder_best.pt"
STAGE_DATASET_SUMMARY = "dataset_summary.json"
STAGE_DECODER_FIT = "decoder_fit.csv"
STAGE_FILES = (STAGE_DECODER, STAGE_ENCODER_BEST, STAGE_DATASET_SUMMARY, STAGE_DECODER_FIT)
TEACHER = "teacher"
"""A GoRL run's own teacher run directory (when its config names no ``teacher_run``)."""
TEACHER_STAGE = "teacher"
"""stages/teacher/: the teacher dataset's summary and the fit of the decoder on it."""

REQUIRED_FILES = (CONFIG, EVALS, METRICS, PROBES, PROVENANCE, CHECKPOINT, STATUS)
"""What an ended run directory holds (``check-run`` checks each)."""
OWNED = (*REQUIRED_FILES, CHECKPOINT_PREVIOUS, POLICY_FINAL, POLICY_BEST, TENSORBOARD, WANDB, LOCK,
         PIPELINE_REQUEST, STAGES, TEACHER)
"""Everything a run (or the pipeline's job) may write; ``--force`` removes these and nothing else."""
_TEMP = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")  # atomic_write_bytes' temporary files

# -- columns and keys ----------------------------------------------------------------------
EVAL_COLUMNS: dict[str, type] = {
    "env_step": int,        # global env steps trained when evaluated (GoRL: encoder steps)
    "return_mean": float,   # mean undiscounted return over the evaluation episodes
    "return_std": float,
    "episodes": int,
    "stage": int,           # 0 except for GoRL (its stage)
    "wall_time": float,     # seconds since the run started (over all attempts)
}
OPTIONAL_EVAL_COLUMNS: dict[str, type] = {
    "return_mean_deterministic": float,  # stochastic evaluations (eval_deterministic false): the mean action's return
}
"""evals.csv columns written when a run's rows carry them."""
METRICS_COLUMNS = ("env_step",)
"""Required metrics.csv columns; the trainer adds any scalars it logs after them."""
CONFIG_KEYS = ("algorithm", "task", "seed", "preset", "hyperparameters")
PROVENANCE_KEYS = ("algorithm", "task", "seed", "device", "wall_time_s", "git_commit", "versions")
STATUS_KEYS = ("status", "reason", "env_steps", "algorithm", "task", "seed")
PROBE_ARRAYS = ("states", "env_step", "actions")

# -- statuses ------------------------------------------------------------------------------
COMPLETED = "completed"    # status.json by the CLI: the run reached its budget
DIVERGED = "diverged"      # status.json by the CLI: non-finite losses/parameters (reason given)
GATED = "gated"            # status.json by the CLI: a GoRL run refused its teacher's data set (reason given)
FAILED = "failed"          # status.json by the pipeline's job: the CLI crashed (exit code, log tail)
INCOMPLETE = "incomplete"  # evaluations but no status.json: killed or still running
MISSING = "missing"        # named by the experiment, nothing usable on disk
IGNORED = "ignored"        # on disk, but not named by the experiment: in no table
FINAL_STATUSES = (COMPLETED, DIVERGED, GATED)
"""Statuses the CLI writes: the run has ended (completed and diverged runs have a final score;
a gated run has none and is listed among the problem runs)."""
STATUSES = (COMPLETED, DIVERGED, GATED, FAILED, INCOMPLETE, MISSING, IGNORED)


# -- layout --------------------------------------------------------------------------------
_SEED_DIR = re.compile(r"^seed(\d+)$")


def run_path(root: Path | str, algorithm: str, task: str, seed: int) -> Path:
    return Path(root) / algorithm / task / f"seed{seed}"


def discover(root: Path | str) -> list[tuple[str, str, int]]:
    """Every (algorithm, task, seed) run directory under ``root``."""
    root, found = Path(root), []
    if not root.is_dir():
        return found
    for a in sorted(p for p in root.iterdir() if p.is_dir()):
        for t in sorted(p for p in a.iterdir() if p.is_dir()):
            for s in sorted(p for p in t.iterdir() if p.is_dir()):
                m = _SEED_DIR.match(s.name)
                if m:
                    found.append((a.name, t.name, int(m.group(1))))
    return found


def stage_path(run_dir: Path, stage: int, create: bool = False) -> Path:
    d = Path(run_dir) / STAGES / f"stage{stage}"
    if create:
        d.mkdir(parents=True, exist_ok=True)
    return d


# -- writers -------------------------------------------------------------------------------
_UMASK: int | None = None


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (0644 under 022);
    ``mkstemp`` would give 0600, which hides a run's files from the user's group."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _write_synced(fd: int, path: Path, tmp: str, data: bytes) -> None:
    """Write ``data`` to the temporary file ``tmp`` (for ``path``) and sync it. A full disk
    (or quota) raises an OSError that names ``path`` and says "no space left"."""
    os.fchmod(fd, file_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            _write_all(path, f, data)
    except OSError as e:
        if e.errno in _NO_SPACE:
            raise OSError(e.errno, f"no space left on device writing {path}", str(path)) from e
        raise


def _write_all(path: Path, f, data: bytes) -> None:
    """``data`` into the open temporary file ``f`` of ``path``, synced to disk."""
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def no_space(e: BaseException) -> bool:
    """Whether ``e`` is a full disk or an exceeded quota."""
    return isinstance(e, OSError) and e.errno in _NO_SPACE


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _write_synced(fd, path, tmp, data)
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


def write_evals(run_dir: Path, rows: list[dict]) -> None:
    for r in rows[-1:]:
        absent = [c for c in EVAL_COLUMNS if c not in r]
        if absent:
            raise KeyError(f"evaluation row lacks the {EVALS} columns {absent} (rundir.EVAL_COLUMNS)")
    extra = [c for c in OPTIONAL_EVAL_COLUMNS if any(c in r for r in rows)]
    write_csv(Path(run_dir) / EVALS, rows, [*EVAL_COLUMNS, *extra])


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    columns = list(METRICS_COLUMNS)
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    write_csv(Path(run_dir) / METRICS, rows, columns)


def write_probes(run_dir: Path, states: np.ndarray | None, steps: list[int], actions: list[np.ndarray]) -> None:
    if states is None:
        states = np.zeros((0, 0), np.float32)
    write_npz(Path(run_dir) / PROBES, states=states, env_step=np.asarray(steps, np.int64),
              actions=np.stack(actions) if actions else np.zeros((0, states.shape[0], 0, 0), np.float32))


def write_status(run_dir: Path, status: str, reason: str | None, env_steps: int | None, **extra) -> None:
    if status not in (*FINAL_STATUSES, FAILED):
        raise ValueError(f"status.json cannot say {status!r}; one of {(*FINAL_STATUSES, FAILED)}")
    write_json(Path(run_dir) / STATUS, {"status": status, "reason": reason, "env_steps": env_steps, **extra})


# -- readers -------------------------------------------------------------------------------
def read_status(run_dir: Path) -> dict | None:
    """status.json, or None if the run has not ended; an unreadable file reads as ``failed``."""
    p = Path(run_dir) / STATUS
    if not p.exists():
        return None
    try:
        st = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return {"status": FAILED, "reason": f"unreadable {STATUS}: {e}"}
    return st if isinstance(st, dict) else {"status": FAILED, "reason": f"{STATUS} is not a mapping"}


def read_provenance(run_dir: Path) -> dict:
    """provenance.json, or {} if it is absent (the run has not ended), unreadable or not a mapping."""
    try:
        prov = json.loads((Path(run_dir) / PROVENANCE).read_text())
    except (OSError, ValueError):
        return {}
    return prov if isinstance(prov, dict) else {}


def provenance_section(prov: dict, key: str) -> dict:
    """A mapping of provenance.json (``rollout``, ``memory``, ...), or {} where a run directory
    from before the key, or a damaged file, has none."""
    section = prov.get(key)
    return section if isinstance(section, dict) else {}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a teacher's ``policy_final.pt``: what a GoRL run read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def teacher_change(run_dir: Path) -> str | None:
    """Why a GoRL run's teacher is no longer the one it read, or None: the SHA-256 of the
    teacher's ``policy_final.pt`` recorded in stages/teacher/dataset_summary.json as the run
    collected its data set differs from the file's now (a retrained teacher). A run without a
    teacher, without the record (older runs) or whose teacher is gone reads None: a resume reads
    no teacher after its data set is in."""
    try:
        summary = json.loads((Path(run_dir) / STAGES / TEACHER_STAGE / STAGE_DATASET_SUMMARY).read_text())
        recorded, teacher = summary["teacher_policy_sha256"], Path(summary["teacher_run"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(recorded, str):  # a teacher given as objects (benchmarks), not read from a file
        return None
    policy = teacher / POLICY_FINAL
    now = file_sha256(policy) if policy.is_file() else recorded
    if now == recorded:
        return None
    return (f"its teacher {teacher} changed after the run collected its data set from it "
            f"({POLICY_FINAL} SHA-256 {now[:12]}, recorded {str(recorded)[:12]})")


def read_config(run_dir: Path) -> dict | None:
    p = Path(run_dir) / CONFIG
    if not p.exists():
        return None
    try:
        cfg = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return cfg if isinstance(cfg, dict) else None


def read_csv(run_dir: Path, name: str, raw: bool = False):
    """``evals.csv`` / ``metrics.csv`` of a run as a pandas DataFrame: the one reader of the
    run's CSV files (the analysis and ``check-run``). ``raw``: every cell the string as written
    (``check-run`` reports malformed cells by line). None if the file is absent or unparsable;
    an empty frame (with the header's columns, if any) if it has no rows."""
    import pandas as pd

    p = Path(run_dir) / name
    if not p.exists():
        return None
    try:
        if raw:
            return pd.read_csv(p, dtype=str, keep_default_na=False)
        return pd.read_csv(p)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError):
        return None


def read_evals(run_dir: Path):
    """evals.csv as a pandas DataFrame in training order, or None if absent/empty/unusable."""
    df = read_csv(run_dir, EVALS)
    if df is None or df.empty or "env_step" not in df or "return_mean" not in df:
        return None
    return df.sort_values("env_step", kind="stable")


def read_probes(run_dir: Path) -> dict[str, np.ndarray] | None:
    p = Path(run_dir) / PROBES
    if not p.exists():
        return None
    with np.load(p, allow_pickle=False) as z:  # arrays only: a shared file runs no code
        return {k: z[k] for k in z.files}


def load_tensors(path: Path, map_location: Any = "cpu", *, sha256: bool = False) -> Any:
    """A ``.pt`` file that holds only tensors and plain data (policy files, stages/ files),
    loaded without unpickling code (``torch.load(weights_only=True)``). Anything else (a
    pickled object, e.g. planted in a directory someone shared) is refused with a
    :class:`RunDirError` naming the file; nothing in it runs. ``sha256``: returns (data, the
    SHA-256 of the bytes they were read from), the file read once."""
    import pickle

    import torch

    path = Path(path)
    try:
        if sha256:
            raw = path.read_bytes()
            return torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True), \
                hashlib.sha256(raw).hexdigest()
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise RunDirError(f"{path} does not exist") from None
    except pickle.UnpicklingError as e:
        why = str(e).strip().splitlines()
        why = next((ln for ln in why if "Unsupported global" in ln or "GLOBAL" in ln), why[0] if why else "")
        raise RunDirError(f"{path} holds more than tensors and plain data; refusing to load it "
                          f"(it could run code): {why.strip()[:200]}") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise RunDirError(f"{path} is not a readable tensor file: {_first_line(e)}") from None


# -- owning a directory ----------------------------------------------------------------------
class Lock:
    """An exclusive lock on a run directory, held for the life of the training process.

    ``flock`` on ``DIR/.lock``: the kernel releases it when the holder dies (``kill -9``
    included), so a lock left behind is stale by construction and the next process takes it.
    The file holds the holder's PID so that a refused process can name it.
    """

    def __init__(self, run_dir: Path):
        import fcntl

        self.path = Path(run_dir) / LOCK
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            self.created = True
        except FileExistsError:
            self._fd = os.open(self.path, os.O_RDWR)
            self.created = False
        """Whether this process made the lock file (a refused start removes it again)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            os.close(self._fd)
            holder = self.path.read_text().strip() or "unknown"
            raise RunDirError(f"--out {run_dir} is in use by another run (PID {holder}, lock {self.path}); "
                              f"wait for it or use another --out") from None
        old = os.read(self._fd, 64).decode(errors="replace").strip()
        self.stale_pid = old if old and old != str(os.getpid()) else None
        """PID of an earlier holder that died without releasing (kill -9): its lock was taken over."""
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(self._fd)

    def release(self, refused: bool = False) -> None:
        """Drop the lock. ``refused``: nothing was trained, so a lock file this process made goes
        too and --out is left as it was found (a process that opened it meanwhile is refused
        for the same reason, since the refusal depends only on what --out holds)."""
        if self._fd is not None:
            if refused and self.created:
                self.path.unlink(missing_ok=True)
            os.ftruncate(self._fd, 0)  # an ended holder leaves no PID: a PID found later is a dead one
            os.close(self._fd)  # closing drops the flock; the file stays (unlinking would race)
            self._fd = None


def foreign_entries(run_dir: Path) -> list[str]:
    """Names in ``run_dir`` that no run writes (sorted)."""
    out = []
    for name in sorted(os.listdir(run_dir)):
        m = _TEMP.match(name)
        if name in OWNED or (m and m.group("name") in OWNED):
            continue
        out.append(name)
    return out


def clear(run_dir: Path) -> None:
    """Remove what a run wrote (``--force``); refuse, removing nothing, if anything else is there."""
    import shutil

    run_dir = Path(run_dir)
    foreign = foreign_entries(run_dir)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise RunDirError(f"--force: --out {run_dir} holds {foreign[0]!r}{more}, which no run writes; "
                          f"refusing to delete it (use an empty or new --out)")
    for name in os.listdir(run_dir):
        if name == LOCK:
            continue
        p = run_dir / name
        shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


# -- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(run_dir: Path, data: bytes) -> None:
    """Write checkpoint.pt so that a complete checkpoint exists at every instant.

    The new file is written and synced under a temporary name first; then the current
    checkpoint becomes checkpoint.prev.pt, then the new one becomes checkpoint.pt.
    """
    run_dir = Path(run_dir)
    cur, prev = run_dir / CHECKPOINT, run_dir / CHECKPOINT_PREVIOUS
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CHECKPOINT}.", suffix=".tmp")
    try:
        _write_synced(fd, cur, tmp, data)
        if cur.exists():
            os.replace(cur, prev)
        os.replace(tmp, cur)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


TRUST_CHECKPOINT = "--trust-checkpoint"
"""The ``train`` flag that resumes from a pickled checkpoint (an older version's) anyway."""


class UnsafeCheckpoint(RunDirError):
    """A checkpoint that holds pickled objects: refused, never a reason to fall back to another one.
    ``path``: the file; ``found``: the classes and functions it would call (:func:`pickled_globals`)."""

    def __init__(self, path: Path, found: list[str]):
        self.path, self.found = Path(path), list(found)
        super().__init__(_unsafe_checkpoint_message(self.path, self.found[0]))


def pickled_globals(path: Path) -> list[str]:
    """The classes and functions a ``.pt`` file would import and call when unpickled, beyond
    what ``torch.load(weights_only=True)`` allows (none: tensors and plain data only). Reads
    the pickle's opcodes; runs nothing. Raises on a file that is not a readable ``.pt`` file."""
    import torch

    with open(path, "rb") as f:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(f))  # the same order every time


def refuse_pickled_checkpoints(run_dir: Path) -> None:
    """Before a resume writes anything: :class:`UnsafeCheckpoint`, in one line, if
    checkpoint.pt or checkpoint.prev.pt holds pickled objects (a checkpoint of GoRL-Bench
    before checkpoints became tensors and plain data, or a file planted in a directory someone
    shared). Nothing in the file runs and nothing in ``run_dir`` changes. A file that cannot be
    read at all is left to :func:`load_checkpoint` (which falls back to the previous one). A
    GoRL run's own teacher (``teacher/``, resumed by the same command) is checked too, unless it
    completed: a completed teacher is never resumed (its final policy is read, weights-only), so
    its checkpoints are never read."""
    teacher = Path(run_dir) / TEACHER
    done = (read_status(teacher) or {}).get("status") == COMPLETED
    for d in (run_dir, *(() if done else (teacher,))):
        for path, found in pickled_checkpoints(d):
            raise UnsafeCheckpoint(path, found)


def pickled_checkpoints(run_dir: Path) -> list[tuple[Path, list[str]]]:
    """checkpoint.pt and checkpoint.prev.pt of ``run_dir`` that hold pickled objects, each with
    what it would call (:func:`pickled_globals`); runs nothing. A file that is missing or cannot be
    read at all is not listed (:func:`load_checkpoint` says so, or uses the other one)."""
    out = []
    for path in (Path(run_dir) / CHECKPOINT, Path(run_dir) / CHECKPOINT_PREVIOUS):
        if not path.exists():
            continue
        try:
            found = pickled_globals(path)
        except Exception:  # noqa: BLE001 - unreadable
            continue
        if found:
            out.append((path, found))
    return out


def read_checkpoint_file(path: Path, trust: bool = False) -> Any:
    """One checkpoint file, read with ``torch.load(weights_only=True)`` onto the CPU. A file that
    holds pickled objects raises :class:`UnsafeCheckpoint` in one line (nothing in it runs),
    unless ``trust`` (``--trust-checkpoint``: the user wrote it), which unpickles it; a damaged
    file (truncated, not a ``.pt`` file) raises ``ValueError`` in one line (:func:`load_checkpoint`
    then tries the previous one; ``check-run`` reports it)."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except EOFError:
        raise ValueError("EOFError: the file ends early (empty or cut short)") from None
    except (RuntimeError, ValueError) as e:  # a damaged zip archive
        raise ValueError(_first_line(e).split(" This is an internal miniz error")[0]) from None
    except pickle.UnpicklingError as e:
        try:
            found = pickled_globals(path)
        except Exception:  # noqa: BLE001 - a damaged file
            found = []
        if not found:  # damaged rather than pickled: unreadable (not torch's advice to drop weights_only)
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            after = next((i for i, ln in enumerate(lines) if "WeightsUnpickler error" in ln), None)
            detail = lines[after + 1] if after is not None and after + 1 < len(lines) else "damaged"
            raise ValueError(f"UnpicklingError: {detail}") from None
        if not trust:
            raise UnsafeCheckpoint(path, found) from None
        return torch.load(path, map_location="cpu", weights_only=False)  # the user vouched for it


def _unsafe_checkpoint_message(path: Path, what: str) -> str:
    return (f"{path} holds pickled objects ({what}), not only tensors and plain data: a checkpoint of an "
            f"older GoRL-Bench, or a file someone planted; refusing to load it (it could run code); "
            f"nothing in {Path(path).parent} was changed: start the run again with a new --out, or, "
            f"only if you wrote this file yourself, pass {TRUST_CHECKPOINT} to resume from it (in the "
            f"pipeline: snakemake --config trust_checkpoints=true)")


def load_checkpoint(run_dir: Path, load: Callable[[Path], Any], log: Callable[[str], None]) -> Any | None:
    """checkpoint.pt, else checkpoint.prev.pt (said in one log line); None if there is neither.

    ``load(path)`` reads one file and raises on a corrupt one. If every checkpoint present is
    unusable, :class:`RunDirError` names the file and the choices. :class:`UnsafeCheckpoint`
    from ``load`` is raised as it is (a planted file is no reason to use the other one).
    """
    run_dir = Path(run_dir)
    cur, prev = run_dir / CHECKPOINT, run_dir / CHECKPOINT_PREVIOUS
    if not cur.exists() and not prev.exists():
        return None
    why = f"{cur} is missing"
    if cur.exists():
        try:
            return load(cur)
        except UnsafeCheckpoint:
            raise
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint
            why = f"{cur} is unreadable ({_first_line(e)})"
    if prev.exists():
        try:
            state = load(prev)
        except UnsafeCheckpoint:
            raise
        except Exception:  # noqa: BLE001
            pass
        else:
            log(f"{why}; resuming from the previous checkpoint {prev.name}")
            return state
    raise RunDirError(f"{why} and there is no usable previous checkpoint ({CHECKPOINT_PREVIOUS}); "
                      f"the run cannot resume: pass --force to start it over, or use another --out")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
