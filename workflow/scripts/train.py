"""Training job: run `gorl-bench train` for one (algorithm, task, seed).

Called by the `train` rule (workflow/rules/train.smk) as

    python train.py --status RUN/status.json --log LOG --threads N -- ALGO TASK --seed S [CLI args]

* exit 0 + status.json completed/diverged (the CLI's contract): done.
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
  to seedN.stale-<time> so that the new run does not resume an incompatible checkpoint.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gorl import experiment, rundir  # the workflow puts this checkout on PYTHONPATH
from gorl.cli import build_parser
from gorl.errors import BadInput

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--status", type=Path, required=True, help="the run's status.json (the rule's output)")
ap.add_argument("--log", type=Path, required=True)
ap.add_argument("--threads", type=int, default=1, help="the job's threads: (passed to --threads)")
ap.add_argument("cli", nargs=argparse.REMAINDER, help="-- ALGO TASK --seed S [gorl-bench train args]")
a = ap.parse_args()
cli_args = a.cli[1:] if a.cli[:1] == ["--"] else a.cli
if len(cli_args) < 2:
    ap.error("expected ALGO TASK after --")

status = a.status
run_dir = status.parent
log = a.log
log.parent.mkdir(parents=True, exist_ok=True)
cli = ["train", *cli_args, *experiment.train_job_flags(os.environ)]  # trust_checkpoints: --trust-checkpoint
old = rundir.read_config(run_dir)
if old is not None:
    args = build_parser().parse_args([*cli, "--out", str(run_dir)])
    try:
        new = experiment.requested_identity(args.algo, args.task, args.seed, args.preset, args.steps,
                                            args.overrides, args.imports)
    except BadInput:
        new = None  # the CLI names the bad input below (exit 2)
    if new is not None and experiment.run_differences(old, new):
        stale = run_dir.with_name(f"{run_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(run_dir), str(stale))
run_dir.mkdir(parents=True, exist_ok=True)
if status.exists():  # Snakemake decided to rerun: the CLI refuses a completed dir otherwise
    status.unlink()

# --threads = the job's `threads:` (Snakemake also exports OMP_NUM_THREADS etc. = threads);
# it is not part of a run's identity: changing it must not move an interrupted run aside.
threads = max(1, a.threads)
cmd = [sys.executable, "-c",
       "import sys; from gorl.cli import main; sys.argv[0] = 'gorl-bench'; sys.exit(main())",
       *cli, "--out", str(run_dir), "--threads", str(threads), "--quiet"]
with open(log, "a") as f:
    f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} gorl-bench {' '.join(cli)} --out {run_dir} "
            f"--threads {threads} --quiet\n")
    f.flush()
    rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    f.write(f"# exit code {rc}\n")

if rc == 0 and status.exists():
    sys.exit(0)
if rc == 2:  # repeat the CLI's one-line error (what was wrong, what to do) from the log
    prefix, lines = "gorl-bench train: error: ", log.read_text(errors="replace").splitlines()
    this = max((i for i, ln in enumerate(lines) if ln.startswith("# ") and " gorl-bench " in ln), default=0)
    said = [ln.removeprefix(prefix) for ln in lines[this:] if ln.startswith(prefix)]  # this attempt's
    sys.exit(f"gorl-bench rejected its input (exit 2): {said[-1] + '; ' if said else ''}see {log}")
if rc < 0 or rc in (75, 130, 137, 143):  # 75: no space left (gorl.cli.EXIT_NO_SPACE)
    sys.exit(f"gorl-bench was stopped (exit {rc}); rerun to resume from the checkpoint; see {log}")
tail = log.read_text(errors="replace").strip().splitlines()[-15:]
reason = f"exit code {rc}" + ("" if rc else f" but no {rundir.STATUS}") + f"; log: {log}"
rundir.write_status(run_dir, rundir.FAILED, reason, None, exit_code=rc, log_tail=tail)
print(f"run failed ({reason}); recorded in {status}", file=sys.stderr)
