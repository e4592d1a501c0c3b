"""The jobs `snakemake -n` lists for a config, in a form that compares across checkouts.

    python tests/workflow_jobs.py        # rewrite tests/data/workflow_jobs.json from this checkout

tests/test_workflow.py compares every shipped config's job list with the recorded one, so a
refactoring of the workflow that changes what would run (a job, an output, a resource, a
training command) shows up as a diff. Record again only when the change is meant.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).resolve().parent / "data" / "workflow_jobs.json"
CONFIGS = ("config/config.yaml", "config/small.yaml", "config/paper.yaml", "config/paper-gpu.yaml")
KEYS = ("input", "output", "log", "wildcards", "resources", "threads")


def _normalise(text: str) -> str:
    return text.replace(sys.executable, "<python>").replace(str(ROOT), "<repo>")


def parse(dry_run: str) -> list[dict]:
    """Jobs of `snakemake -n -p` output: rule, the items of KEYS and the shell command."""
    jobs, job = [], None
    for line in dry_run.splitlines():
        if m := re.match(r"^(?:local)?rule (\S+):$", line):
            job = {"rule": m.group(1)}
            jobs.append(job)
        elif job is not None and (m := re.match(r"^    (\w+): (.*)$", line)) and m.group(1) in KEYS:
            items = [i for i in m.group(2).split(", ") if not i.startswith("tmpdir=")]
            job[m.group(1)] = sorted(_normalise(i) for i in items)
        elif job is not None and line.startswith("Shell command: "):
            job["shell"] = _normalise(line[len("Shell command: "):])
    return sorted(jobs, key=lambda j: json.dumps(j, sort_keys=True))


def dry_run(config: str) -> list[dict]:
    env = dict(os.environ, MUJOCO_GL="disable")
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                              work, "-n", "-p", "--configfile", str(ROOT / config)],
                             capture_output=True, text=True, env=env, cwd=work, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"snakemake -n --configfile {config} failed:\n{out.stderr[-3000:]}")
    return parse(out.stdout + out.stderr)


if __name__ == "__main__":
    RECORD.parent.mkdir(exist_ok=True)
    blocks = [f"{json.dumps(c)}: [\n" + ",\n".join(json.dumps(j, sort_keys=True) for j in dry_run(c)) + "\n]"
              for c in CONFIGS]
    RECORD.write_text("{\n" + ",\n".join(blocks) + "\n}\n")  # one job per line
    print(f"wrote {RECORD}")
