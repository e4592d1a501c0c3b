"""`snakemake --lint` reports only the items explained where they arise.

Remaining on purpose (each explained next to the code and in docs/pipeline.md):
* "Specify a conda environment or container for each rule": every rule runs this checkout's
  `gorl`/`analysis` code in the one environment of environment.yml (docs/pipeline.md,
  "Software environment");
* rule train's shell command uses PYTHON / TRAIN_PY directly: as params they would be a rerun
  trigger, and a new interpreter path or checkout location must never retrain
  (workflow/rules/train.smk).
Anything else (a rule without `log:`, a hard-coded path param, ...) fails this test.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA = "Specify a conda environment or container for each rule."
TRAIN_ONLY = {
    "Shell command directly uses variable PYTHON from outside of the rule",
    "Shell command directly uses variable TRAIN_PY from outside of the rule",
}


def test_snakemake_lint_reports_only_explained_items():
    env = dict(os.environ, MUJOCO_GL="disable")
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(ROOT)],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    text = out.stdout + out.stderr
    assert "Lints for" in text or out.returncode == 0, text[-3000:]
    found = []
    where = None
    for line in text.splitlines():
        m = re.match(r"Lints for (.+?)(?: \(line \d+, .*\))?:$", line)
        if m:
            where = m.group(1)
            continue
        m = re.match(r"    \* (.+?):$", line)
        if m:
            found.append((where, m.group(1)))
    unexplained = [(w, t) for w, t in found
                   if not (t == CONDA or (t in TRAIN_ONLY and w in ("rule train", "rule teacher")))]
    assert not unexplained, unexplained
