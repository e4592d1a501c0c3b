"""Training job: run `gorl-bench train` for one (algorithm, task, seed).

Called by the `train` and `teacher` rules (workflow/rules/train.smk, teacher.smk) as

    python train.py --status RUN/status.json --log LOG --threads N -- ALGO TASK --seed S [CLI args]

What the job does is gorl.job.train_job (this file only reads the arguments):

* exit 0 + status.json completed/diverged/gated (the CLI's contract): done.
* the CLI crashed (any other exit code, or no status.json): write status.json with
  status "failed", the exit code and the log tail, and succeed, so that one broken run never
  blocks the aggregation of the others; the aggregation lists it in problem_runs.csv and the
  workflow ends non-zero naming it (onsuccess in common.smk).
  Retry it with `rm <its status.json>` and rerun the workflow (it resumes from checkpoint.pt).
* exit 2 (bad input, e.g. a wrong --set value, or a checkpoint of an older version that holds
  pickled objects) fails the job loudly, with the CLI's one-line error: that is a config error.
* the experiment's `trust_checkpoints: true` (in this job's environment:
  gorl.experiment.train_job_flags) adds --trust-checkpoint.
* stopped by a signal (Ctrl-C, SLURM time limit: the CLI checkpoints and exits 130/143) or
  by a full disk (exit 75, the last checkpoint intact): fail, so the next invocation resumes it.
* if the run directory holds a different run (gorl.experiment.run_differences between its
  config.yaml and this request: the rule the CLI uses to refuse a resume), it is moved aside
  to seedN.stale-<time> so that the new run does not resume an incompatible checkpoint; so is
  this run ended (completed, diverged or gated), which Snakemake reruns only when forced
  (--forcerun, a deleted status.json) or when its input changed: it trains anew.
"""
import argparse
import sys
from pathlib import Path

from gorl import job  # the workflow puts this checkout on PYTHONPATH

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--status", type=Path, required=True, help="the run's status.json (the rule's output)")
ap.add_argument("--log", type=Path, required=True)
ap.add_argument("--threads", type=int, default=1, help="the job's threads: (passed to --threads)")
ap.add_argument("cli", nargs=argparse.REMAINDER, help="-- ALGO TASK --seed S [gorl-bench train args]")
a = ap.parse_args()
cli_args = a.cli[1:] if a.cli[:1] == ["--"] else a.cli
if len(cli_args) < 2:
    ap.error("expected ALGO TASK after --")
code, message = job.train_job(a.status, a.log, a.threads, cli_args)
if message:
    print(message, file=sys.stderr)
sys.exit(code)
