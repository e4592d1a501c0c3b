"""The pipeline's training job (rules ``train`` and ``teacher``, through
``workflow/scripts/train.py``): ``gorl-bench train`` into one run directory, with what the
workflow needs around it: a changed run moved aside, a crash recorded as data, a stop or a
config error failing the job (:func:`train_job`, :func:`job_outcome`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gorl import experiment, rundir
from gorl.cli import EXIT_BAD_INPUT, EXIT_NO_SPACE, build_parser
from gorl.errors import BadInput

STOPPED_EXITS = (EXIT_NO_SPACE, 130, 137, 143)
"""``gorl-bench train`` exit codes of a run stopped from outside with its checkpoint intact: no
space left, SIGINT, SIGKILL, SIGTERM (a Slurm time limit)."""


def job_outcome(exit_code: int, finished: bool) -> str:
    """How the pipeline's training job reads ``gorl-bench train``'s exit (``finished``: it wrote
    status.json): 'done' (exit 0, status.json: completed, diverged or gated, all data);
    'bad_input' (exit 2: a config error, which fails the job loudly); 'stopped' (a signal or a
    full disk: fail the job, so the next invocation resumes the run); 'crashed' (anything else:
    recorded as a failed run, and the job succeeds so that one broken run never blocks the
    analysis of the others)."""
    if exit_code == 0 and finished:
        return "done"
    if exit_code == EXIT_BAD_INPUT:
        return "bad_input"
    if exit_code < 0 or exit_code in STOPPED_EXITS:
        return "stopped"
    return "crashed"


def train_job(status: Path, log: Path, threads: int, cli_args: list[str]) -> tuple[int, str | None]:
    """The pipeline's training job (rules ``train`` and ``teacher``, through
    ``workflow/scripts/train.py``): ``gorl-bench train CLI_ARGS --out RUN --threads N --quiet``
    into the run directory of ``status``, its output appended to ``log``. Returns the job's exit
    code and a message for its stderr (:func:`job_outcome` decides which).

    A run directory that holds a different run (:func:`gorl.experiment.run_differences` between
    its config.yaml and this request: the rule the CLI uses to refuse a resume) is moved aside to
    ``seedN.stale-<time>`` first, so the new run does not resume an incompatible checkpoint. So is
    one that holds this run ended (completed, diverged or gated: its provenance.json is written as
    it ends): Snakemake reruns an ended run only when asked to (``--forcerun``, a deleted
    status.json) or when its input changed (a retrained teacher), and each means a new run; resuming
    would redo the part after its last checkpoint and mix two codes or teachers in one run. So is
    an interrupted GoRL run whose teacher was retrained after it collected its data set
    (:func:`gorl.rundir.teacher_change`): resumed, it would go on from the old teacher's data
    under the new one's name. A run recorded as failed (a crash, no provenance.json) or killed
    before it ended otherwise resumes from its checkpoint when rerun.
    ``trust_checkpoints`` reaches the CLI through this process's environment
    (:func:`gorl.experiment.train_job_flags`). ``threads`` is not part of a run's identity
    (changing it moves nothing aside)."""
    run_dir = status.parent
    log.parent.mkdir(parents=True, exist_ok=True)
    cli = ["train", *cli_args, *experiment.train_job_flags(os.environ)]
    old = rundir.read_config(run_dir)
    moved = None  # the line that says a run directory was moved aside, and why
    if old is not None:
        args = build_parser().parse_args([*cli, "--out", str(run_dir)])
        try:
            new = experiment.requested_identity(args.algo, args.task, args.seed, args.preset, args.steps,
                                                args.overrides, args.imports)
        except BadInput:
            new = None  # the CLI names the bad input below (exit 2)
        why = None
        if new is not None:
            differences = experiment.run_differences(old, new)
            if differences:
                why = f"it holds a different run ({'; '.join(differences[:3])}{'; ...' if len(differences) > 3 else ''})"
            elif (run_dir / rundir.PROVENANCE).exists():
                why = "it holds this run ended, which Snakemake reruns (--forcerun, a deleted status.json or a new input)"
            elif changed := rundir.teacher_change(run_dir):
                why = f"it holds this run interrupted, and {changed}"
        if why:
            stale = run_dir.with_name(f"{run_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(str(run_dir), str(stale))
            moved = f"moved {run_dir} aside to {stale.name}: {why}; training anew"
    run_dir.mkdir(parents=True, exist_ok=True)
    if status.exists():  # Snakemake decided to rerun: the CLI refuses a completed dir otherwise
        status.unlink()

    threads = max(1, threads)
    tail_args = ["--out", str(run_dir), "--threads", str(threads), "--quiet"]
    cmd = [sys.executable, "-c", "import sys; from gorl.cli import main; sys.argv[0] = 'gorl-bench'; sys.exit(main())",
           *cli, *tail_args]
    with open(log, "a") as f:
        if moved:
            f.write(f"# {moved}\n")
            print(moved, file=sys.stderr, flush=True)  # in Snakemake's output too
        f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} gorl-bench {' '.join([*cli, *tail_args])}\n")
        f.flush()
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
        f.write(f"# exit code {rc}\n")

    outcome = job_outcome(rc, status.exists())
    if outcome == "done":
        return 0, None
    if outcome == "bad_input":  # repeat the CLI's one-line error (what was wrong, what to do) from the log
        prefix, lines = "gorl-bench train: error: ", log.read_text(errors="replace").splitlines()
        this = max((i for i, ln in enumerate(lines) if ln.startswith("# ") and " gorl-bench " in ln), default=0)
        said = [ln.removeprefix(prefix) for ln in lines[this:] if ln.startswith(prefix)]  # this attempt's
        return 1, f"gorl-bench rejected its input (exit 2): {said[-1] + '; ' if said else ''}see {log}"
    if outcome == "stopped":
        return 1, f"gorl-bench was stopped (exit {rc}); rerun to resume from the checkpoint; see {log}"
    tail = log.read_text(errors="replace").strip().splitlines()[-15:]
    reason = f"exit code {rc}" + ("" if rc else f" but no {rundir.STATUS}") + f"; log: {log}"
    rundir.write_status(run_dir, rundir.FAILED, reason, None, exit_code=rc, log_tail=tail)
    return 0, f"run failed ({reason}); recorded in {status}"
