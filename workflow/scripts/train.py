"""Training job: run `gorl-bench train` for one (algorithm, task, seed).

Called by the `train` rule (workflow/rules/train.smk) as

    python train.py --status RUN/status.json --log LOG --threads N -- ALGO TASK --seed S [CLI args]

* exit 0 + status.json completed/diverged (the CLI's contract): done.
* the CLI crashed (any other exit code, or no status.json): write status.json with
  status "failed", the exit code and the log tail, and succeed, so that one broken run never
  blocks the aggregation of the others; the aggregation lists it in problem_runs.csv.
  Retry it with `rm <its status.json>` and rerun the workflow (it resumes from checkpoint.pt).
* exit 2 (bad input, e.g. a wrong --set value) fails the job loudly: that is a config error.
* stopped by a signal (Ctrl-C, SLURM time limit: the CLI checkpoints and exits 130/143) or
  by a full disk (exit 75, the last checkpoint intact): fail, so the next invocation resumes it.
* if the run directory was started with different arguments (config changed), it is moved
  aside to seedN.stale-<time> so that the new run does not resume an incompatible checkpoint.
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gorl import rundir  # the run-directory contract (the workflow puts this checkout on PYTHONPATH)

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
cli = ["train", *cli_args]
request = {"cli": cli}
req_file = run_dir / rundir.PIPELINE_REQUEST

if req_file.exists():
    try:
        old = json.loads(req_file.read_text())
    except ValueError:
        old = None
    if old != request:
        stale = run_dir.with_name(f"{run_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(run_dir), str(stale))
run_dir.mkdir(parents=True, exist_ok=True)
if status.exists():  # Snakemake decided to rerun: the CLI refuses a completed dir otherwise
    status.unlink()
req_file.write_text(json.dumps(request) + "\n")

# --threads = the job's `threads:` (Snakemake also exports OMP_NUM_THREADS etc. = threads);
# it is not part of `request`: changing it must not move an interrupted run aside.
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
if rc == 2:
    sys.exit(f"gorl-bench rejected its input (exit 2); see {log}")
if rc < 0 or rc in (75, 130, 137, 143):  # 75: no space left (gorl.cli.EXIT_NO_SPACE)
    sys.exit(f"gorl-bench was stopped (exit {rc}); rerun to resume from the checkpoint; see {log}")
tail = log.read_text(errors="replace").strip().splitlines()[-15:]
reason = f"exit code {rc}" + ("" if rc else f" but no {rundir.STATUS}") + f"; log: {log}"
rundir.write_status(run_dir, rundir.FAILED, reason, None, exit_code=rc, log_tail=tail)
print(f"run failed ({reason}); recorded in {status}", file=sys.stderr)
