"""``gorl-bench check-run DIR`` accepts a real run directory and rejects each broken copy,
naming the missing or malformed item (file, column, key, array) and exiting non-zero."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli, cli_here
from gorl import rundir
from gorl.check_run import (CONFIG_KEYS, METRICS_COLUMNS, PROBE_ARRAYS, PROVENANCE_KEYS, REQUIRED_FILES,
                            STATUS_KEYS)
from gorl.cli import main

SMOKE = ["--preset", "smoke", "--quiet", "--seed", "0"]


@pytest.fixture(scope="module")
def good_run(ppo_smoke_run) -> Path:
    """One real run: 2 iterations of smoke PPO on cartpole-balance, seed 0 (3 evaluations),
    shared with other test files (conftest.ppo_smoke_run); tests change copies of it."""
    return ppo_smoke_run


@pytest.fixture
def run_copy(good_run, tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(good_run, d)
    return d


def check(d: Path, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["check-run", str(d)])
    out = capsys.readouterr()
    prefix = f"{d}: "
    lines = [line.removeprefix(prefix) for line in (out.out + out.err).splitlines()]
    return rc, lines


# ---- editing helpers -----------------------------------------------------------------
def _json(d: Path, name: str, edit) -> None:
    obj = json.loads((d / name).read_text())
    edit(obj)
    (d / name).write_text(json.dumps(obj))


def _yaml(d: Path, name: str, edit) -> None:
    obj = yaml.safe_load((d / name).read_text())
    edit(obj)
    (d / name).write_text(yaml.safe_dump(obj))


def _csv(d: Path, name: str, edit) -> None:
    with open(d / name, newline="") as f:
        reader = csv.DictReader(f)
        cols, rows = list(reader.fieldnames), list(reader)
    cols, rows = edit(cols, rows)
    with open(d / name, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _npz(d: Path, edit) -> None:
    z = np.load(d / rundir.PROBES)
    arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(d / rundir.PROBES, **arrays)


def _drop_column(col):
    return lambda cols, rows: ([c for c in cols if c != col], rows)


def _set_cell(row, col, value):
    def edit(cols, rows):
        rows[row][col] = value
        return cols, rows
    return edit


# ---- the real run passes -------------------------------------------------------------
def test_real_run_is_ok(good_run, capsys):
    assert set(REQUIRED_FILES) <= {p.name for p in good_run.iterdir()}
    assert check(good_run, capsys) == (0, ["ok"])
    out = cli("check-run", good_run)  # the installed entry point, in a fresh process
    assert out.returncode == 0 and out.stdout.strip() == f"{good_run}: ok"


def test_diverged_run_is_ok(tmp_path, capsys):
    """Divergence is data: status 'diverged' with a reason, exit 0, and a valid directory."""
    d = tmp_path / "nan"
    out = cli_here("train", "ppo", "gym:Test/NaNAfter-v0", "--import", "toy_envs", "--steps", 19200, "--out", d, *SMOKE)
    assert out.returncode == 0 and json.loads((d / rundir.STATUS).read_text())["status"] == "diverged"
    assert check(d, capsys)[0] == 0
    _json(d, rundir.STATUS, lambda s: s.update(reason=None))
    rc, lines = check(d, capsys)
    assert rc == 1 and lines == ["status.json: a diverged run must give a 'reason'"]


# ---- each required item, missing: exactly one line, naming it --------------------------
MISSING = (
    [(f"file {f}", lambda d, f=f: (d / f).unlink(), f"missing {f}") for f in REQUIRED_FILES]
    + [(f"evals column {c}", lambda d, c=c: _csv(d, rundir.EVALS, _drop_column(c)),
        f"evals.csv: missing columns ['{c}']") for c in rundir.EVAL_COLUMNS]
    + [(f"metrics column {c}", lambda d, c=c: _csv(d, rundir.METRICS, _drop_column(c)),
        f"metrics.csv: missing columns ['{c}']") for c in METRICS_COLUMNS]
    + [(f"status key {k}", lambda d, k=k: _json(d, rundir.STATUS, lambda s: s.pop(k)),
        f"status.json: missing keys ['{k}']") for k in STATUS_KEYS]
    + [(f"config key {k}", lambda d, k=k: _yaml(d, rundir.CONFIG, lambda c: c.pop(k)),
        f"config.yaml: missing keys ['{k}']") for k in CONFIG_KEYS]
    + [(f"provenance key {k}", lambda d, k=k: _json(d, rundir.PROVENANCE, lambda p: p.pop(k)),
        f"provenance.json: missing keys ['{k}']") for k in PROVENANCE_KEYS]
    + [(f"probes array {k}", lambda d, k=k: _npz(d, lambda a: a.pop(k)),
        f"probes.npz: missing arrays ['{k}']") for k in PROBE_ARRAYS]
)


@pytest.mark.parametrize("mutate, expected", [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
def test_missing_item_is_named(run_copy, capsys, mutate, expected):
    mutate(run_copy)
    rc, lines = check(run_copy, capsys)
    assert rc == 1
    assert lines == [expected]


# ---- malformed items ---------------------------------------------------------------------
def _write(name, text):
    return lambda d: (d / name).write_text(text)


def _truncate(path: Path) -> None:
    """Cut a file in half, as a full disk or a copy cut short leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


MALFORMED = [
    ("status not JSON", _write(rundir.STATUS, "{"), "status.json: not valid JSON"),
    ("status not a mapping", _write(rundir.STATUS, "[]"), "status.json: expected a mapping"),
    ("status running", lambda d: _json(d, rundir.STATUS, lambda s: s.update(status="running")),
     "status.json: 'status' must be one of"),
    ("env_steps negative", lambda d: _json(d, rundir.STATUS, lambda s: s.update(env_steps=-1)),
     "status.json: 'env_steps' must be a non-negative integer"),
    ("env_steps text", lambda d: _json(d, rundir.STATUS, lambda s: s.update(env_steps="3840")),
     "status.json: 'env_steps' must be a non-negative integer"),
    ("diverged without reason", lambda d: _json(d, rundir.STATUS, lambda s: s.update(status="diverged")),
     "status.json: a diverged run must give a 'reason'"),
    ("status of another run", lambda d: _json(d, rundir.STATUS, lambda s: s.update(seed=7)),
     "status.json: 'seed' is 7 but config.yaml says 0"),
    ("config not YAML", _write(rundir.CONFIG, "a: [1,"), "config.yaml: not valid YAML"),
    ("hyperparameters not a mapping", lambda d: _yaml(d, rundir.CONFIG, lambda c: c.update(hyperparameters=3)),
     "config.yaml: 'hyperparameters' must be a mapping"),
    ("provenance not JSON", _write(rundir.PROVENANCE, "nope"), "provenance.json: not valid JSON"),
    ("evals no rows", lambda d: _csv(d, rundir.EVALS, lambda c, r: (c, [])), "evals.csv: no evaluation rows"),
    ("evals not numeric", lambda d: _csv(d, rundir.EVALS, _set_cell(1, "return_mean", "abc")),
     "evals.csv: line 3 is not numeric"),
    ("evals empty cell", lambda d: _csv(d, rundir.EVALS, _set_cell(1, "wall_time", "")),
     "evals.csv: line 3 is not numeric"),
    ("evals backwards", lambda d: _csv(d, rundir.EVALS, _set_cell(2, "env_step", "0")),
     "evals.csv: line 4: env_step 0 goes backwards (previous 1920)"),
    ("evals return nan", lambda d: _csv(d, rundir.EVALS, _set_cell(0, "return_mean", "nan")),
     "evals.csv: line 2: return_mean is not finite"),
    ("evals no episodes", lambda d: _csv(d, rundir.EVALS, _set_cell(0, "episodes", "0")),
     "evals.csv: line 2: episodes must be positive"),
    ("no evaluation before training", lambda d: _csv(d, rundir.EVALS, lambda c, r: (c, r[1:])),
     "evals.csv: the first evaluation must be before any update (env_step 0)"),
    ("no final evaluation", lambda d: _csv(d, rundir.EVALS, lambda c, r: (c, r[:-1])),
     "evals.csv: a completed run must end with an evaluation at its final env step 3840"),
    ("evals beyond the budget", lambda d: _json(d, rundir.STATUS, lambda s: s.update(env_steps=1920)),
     "evals.csv: last env_step 3840 is beyond status env_steps 1920"),
    ("metrics no rows", lambda d: _csv(d, rundir.METRICS, lambda c, r: (c, [])),
     "metrics.csv: no rows (one per training iteration) in a completed run"),
    ("metrics step not integer", lambda d: _csv(d, rundir.METRICS, _set_cell(0, "env_step", "x")),
     "metrics.csv: line 2: env_step is not an integer"),
    ("metrics backwards", lambda d: _csv(d, rundir.METRICS, _set_cell(1, "env_step", "0")),
     "metrics.csv: line 3: env_step 0 goes backwards"),
    ("probes unreadable", _write(rundir.PROBES, "not a zip"), "probes.npz: unreadable"),
    ("probe states shape", lambda d: _npz(d, lambda a: a.update(states=a["states"][0])),
     "probes.npz: 'states' must be (P, obs_dim)"),
    ("probe actions shape", lambda d: _npz(d, lambda a: a.update(actions=a["actions"][:, :, 0])),
     "probes.npz: 'actions' must be (E, P, K, act_dim)"),
    ("probe actions unsquashed", lambda d: _npz(d, lambda a: a.update(actions=a["actions"] * 3 + 2)),
     "probes.npz: 'actions' must be env actions in [-1, 1]"),
    ("probe actions nan", lambda d: _npz(d, lambda a: a["actions"].__setitem__((0, 0, 0, 0), np.nan)),
     "probes.npz: 'actions' must be finite"),
    ("probe snapshot missing", lambda d: _npz(d, lambda a: a.update(env_step=a["env_step"][:-1],
                                                                     actions=a["actions"][:-1])),
     "probes.npz: 2 probe snapshots but 3 evaluations"),
    ("probe steps differ", lambda d: _npz(d, lambda a: a.update(env_step=a["env_step"] + 1)),
     "probes.npz: 'env_step' [1, 1921, 3841] does not match evals.csv env_step [0, 1920, 3840]"),
    ("checkpoint truncated", lambda d: _truncate(d / rundir.CHECKPOINT), "checkpoint.pt: unreadable"),
    ("checkpoint not a tensor file", _write(rundir.CHECKPOINT, "not a checkpoint"), "checkpoint.pt: unreadable"),
]


@pytest.mark.parametrize("mutate, expected", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_item_is_named(run_copy, capsys, mutate, expected):
    mutate(run_copy)
    rc, lines = check(run_copy, capsys)
    assert rc == 1
    assert any(line.startswith(expected) for line in lines), lines


# ---- checkpoint.pt: tensors and plain data only, read without unpickling anything ----------
class Payload:
    """Unpickling this creates a file: the proof that check-run ran code from the checkpoint."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


class Plain:
    """A plain Python object: harmless, but pickled all the same (not tensors and plain data)."""

    def __init__(self):
        self.lr = 3e-4


@pytest.mark.parametrize("name", [rundir.CHECKPOINT, rundir.CHECKPOINT_PREVIOUS])
@pytest.mark.parametrize("gift, found", [("payload", "io.open"), ("object", "test_check_run.Plain")])
def test_a_pickled_checkpoint_is_named_in_one_line_and_never_runs(run_copy, tmp_path, capsys, gift, found, name):
    """A checkpoint (checkpoint.pt, or the checkpoint.prev.pt a resume would fall back to) holding
    pickled objects (planted, or an older version's) is one problem line naming the file and what it
    would call; nothing in it runs, nothing in the directory changes."""
    import torch

    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    st = torch.load(run_copy / rundir.CHECKPOINT, weights_only=True)  # the real run's: tensors and plain data
    torch.save(dict(st, gift=Payload() if gift == "payload" else Plain()), run_copy / name)
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    rc, lines = check(run_copy, capsys)
    assert rc == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"{name}: holds pickled objects ({found})"), lines
    assert "--trust-checkpoint" in lines[0]
    assert not marker.exists()
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before
    out = cli("check-run", run_copy, check=False)  # the entry point, in a fresh process (no Payload class there)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"{run_copy}: {name}: holds pickled objects ({found})"), out.stderr
    assert not marker.exists()


def test_a_damaged_previous_checkpoint_is_no_problem(run_copy, capsys):
    """A resume reads checkpoint.prev.pt only when checkpoint.pt is unusable: a damaged one beside a
    good checkpoint.pt is not reported."""
    (run_copy / rundir.CHECKPOINT_PREVIOUS).write_bytes((run_copy / rundir.CHECKPOINT).read_bytes()[:1000])
    assert check(run_copy, capsys) == (0, ["ok"])


def test_not_a_directory(tmp_path, capsys):
    rc, lines = check(tmp_path / "nope", capsys)
    assert rc == 1 and lines == ["not a directory"]
