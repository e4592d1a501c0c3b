"""Nothing lost on a full disk, a SIGTERM or a broken env; nothing run from a shared directory
(issue 21, points 6 and 7).

Real parts: the CLI in subprocesses, real signals, a real full filesystem (a tiny tmpfs, where
this process may mount one) and, everywhere, a writer that fails as a full disk does.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, as_old_pickled_checkpoints, cli, cli_env, cli_here, strip_wall

SMOKE = ["--preset", "smoke", "--quiet"]


def _metrics_rows(d: Path) -> int:
    m = d / "metrics.csv"
    return len(m.read_text().splitlines()) - 1 if m.exists() else 0


# -- a full disk ---------------------------------------------------------------------------
def test_full_disk_is_one_line_and_the_previous_checkpoint_survives(tmp_path, monkeypatch, capsys):
    """The third checkpoint write meets a full disk: one line naming the file and "no space
    left", a non-zero exit, the checkpoint before it intact; once space is back the same
    command resumes and ends exactly as an undisturbed run."""
    from gorl import rundir
    from gorl.cli import EXIT_NO_SPACE, main

    real, writes = rundir._write_all, {"n": 0}

    def full_disk(path, f, data):
        if path.name == rundir.CHECKPOINT:
            writes["n"] += 1
            if writes["n"] == 3:
                f.write(data[: len(data) // 3])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, f, data)

    args = ["train", "ppo", "cartpole-balance", "--steps", "5760", "--preset", "smoke", "--quiet", "--threads", "1"]
    d, ref = tmp_path / "r", tmp_path / "ref"
    monkeypatch.setattr(rundir, "_write_all", full_disk)
    assert main([*args, "--out", str(d)]) == EXIT_NO_SPACE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "no space left" in err and str(d / rundir.CHECKPOINT) in err, err
    assert not (d / rundir.STATUS).exists()
    assert not [p for p in os.listdir(d) if p.endswith(".tmp")]  # the partial file is gone
    state = torch.load(d / rundir.CHECKPOINT, weights_only=True)  # the previous checkpoint, whole
    assert state["iteration"] == 1
    monkeypatch.setattr(rundir, "_write_all", real)  # space freed
    assert main([*args, "--out", str(d)]) == 0
    assert main([*args, "--out", str(ref)]) == 0
    assert strip_wall(d / rundir.EVALS) == strip_wall(ref / rundir.EVALS)
    assert json.loads((d / rundir.STATUS).read_text())["status"] == "completed"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """An 8 MB tmpfs (root only): room for two PPO smoke checkpoints (3.3 MB each), not three."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_real_full_disk(tiny_tmpfs, tmp_path):
    d = tiny_tmpfs / "r"
    args = ["train", "ppo", "cartpole-balance", "--steps", 5760, *SMOKE]
    out = cli(*args, "--out", d, check=False)
    assert out.returncode == 75, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert "no space left" in out.stderr and str(d) in out.stderr, out.stderr
    torch.load(d / "checkpoint.pt", weights_only=True)  # whole
    moved = tmp_path / "r"  # space freed: the directory on a roomier disk resumes and completes
    shutil.copytree(d, moved)
    cli_here(*args, "--out", moved)
    cli_here(*args, "--out", tmp_path / "ref")
    assert strip_wall(moved / "evals.csv") == strip_wall(tmp_path / "ref" / "evals.csv")


# -- SIGTERM / SIGINT ----------------------------------------------------------------------
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_at_a_checkpoint_within_seconds(tmp_path, sig, code):
    """checkpoint_every is large: the stop writes its own checkpoint; the rerun resumes from it
    and ends exactly as an undisturbed run."""
    d = tmp_path / "r"
    args = ["train", "ppo", "cartpole-balance", "--steps", "23040", "--set", "checkpoint_every=1000", *SMOKE]
    proc = subprocess.Popen([sys.executable, "-m", "gorl", *args, "--out", str(d)], env=cli_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and _metrics_rows(d) < 2 and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be signalled"
        t0 = time.time()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, (proc.returncode, stdout, stderr)
    assert took < 10, took
    assert not (d / "status.json").exists()
    said = [ln for ln in stdout.splitlines() if ln.startswith("stopped by")]
    assert len(said) == 1 and signal.Signals(sig).name in said[0] and "resume" in said[0], stdout
    rows = _metrics_rows(d)
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == rows and f"env step {rows * 1920}" in said[0]  # written at the stop
    if sig == signal.SIGTERM:
        cli_here(*args, "--out", d)
        cli_here(*args, "--out", tmp_path / "ref")
        assert strip_wall(d / "evals.csv") == strip_wall(tmp_path / "ref" / "evals.csv")
        assert (d / "metrics.csv").read_text().count("\n") == (tmp_path / "ref" / "metrics.csv").read_text().count("\n")


@pytest.mark.parametrize("exit_code, finished, outcome", [
    (0, True, "done"), (0, False, "crashed"), (1, False, "crashed"), (1, True, "crashed"), (2, False, "bad_input"),
    (75, False, "stopped"), (130, False, "stopped"), (137, False, "stopped"), (143, False, "stopped"),
    (-9, False, "stopped"), (-15, False, "stopped"),
])
def test_the_pipeline_job_reads_a_stopped_run_as_resume_next_time(exit_code, finished, outcome):
    """A signal or a full disk (the checkpoint intact) fails the job, so the next invocation
    resumes the run; a crash is recorded as data; bad input fails the job loudly."""
    from gorl.cli import EXIT_BAD_INPUT, EXIT_NO_SPACE
    from gorl.job import STOPPED_EXITS, job_outcome

    assert EXIT_NO_SPACE in STOPPED_EXITS and EXIT_BAD_INPUT == 2
    assert job_outcome(exit_code, finished) == outcome


def test_the_pipeline_job_records_a_crash_and_repeats_a_refusal(tmp_path, monkeypatch):
    """gorl.job.train_job, the pipeline's training job, on real runs: an env that raises
    gives a `failed` status.json with the exit code and the log's tail (the job succeeds: the
    analysis goes on); a bad --set fails the job with the CLI's one-line error."""
    from gorl import job

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    status, log = tmp_path / "runs" / "ppo" / "raises" / "seed0" / "status.json", tmp_path / "logs" / "train.log"
    code, message = job.train_job(status, log, 1, ["ppo", "gym:Test/RaisesAfter-v0", "--import", "toy_envs",
                                                          "--seed", "0", "--steps", "19200", "--preset", "smoke"])
    assert (code, message) == (0, f"run failed (exit code 1; log: {log}); recorded in {status}")
    st = json.loads(status.read_text())
    assert (st["status"], st["exit_code"]) == ("failed", 1)
    assert any("sensor cable unplugged" in line for line in st["log_tail"])
    bad = tmp_path / "runs" / "ppo" / "cartpole-balance" / "seed0" / "status.json"
    code, message = job.train_job(bad, log, 1, ["ppo", "cartpole-balance", "--seed", "0",
                                                       "--set", "learning_rat=1e-3"])
    assert code == 1 and message.startswith("gorl-bench rejected its input (exit 2): ") and "learning_rat" in message
    assert message.endswith(f"see {log}") and not bad.exists()


# -- a user's env that raises ----------------------------------------------------------------
def test_an_env_error_names_the_env_and_the_step_and_keeps_the_files(tmp_path):
    d = tmp_path / "r"
    out = cli("train", "ppo", "gym:Test/RaisesAfter-v0", "--import", "toy_envs", "--steps", 19200, "--out", d,
              *SMOKE, check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sensor cable unplugged" in out.stderr and "Traceback" in out.stderr  # the user's traceback
    last = out.stderr.strip().splitlines()[-1]
    # 8 envs x 240 steps per iteration; each env raises at its 501st step, in iteration 3
    assert "gym:Test/RaisesAfter-v0" in last and "env step 3840" in last and "sensor cable unplugged" in last, last
    assert not (d / "status.json").exists()
    assert (d / "checkpoint.pt").exists() and len((d / "evals.csv").read_text().splitlines()) >= 2
    assert _metrics_rows(d) == 2


# -- nothing runs from a shared directory --------------------------------------------------------
class Payload:
    """Unpickling this creates a file: the proof that a loader ran code from a shared file."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def gorl_run(gorl_smoke_run):
    """The shared GoRL-FM smoke run (conftest.gorl_smoke_run): two stages; the tests copy it."""
    return gorl_smoke_run[0]


def _plant(path: Path, marker: Path) -> None:
    Payload.marker = str(marker)
    st = torch.load(path, weights_only=True)
    st["agent"] = dict(st["agent"], gift=Payload())
    torch.save(st, path)


@pytest.mark.parametrize("target", ["policy_final.pt", "stages/stage0/encoder_best.pt", "stages/stage1/decoder.pt"])
def test_a_planted_pickle_is_refused_in_one_line_and_never_runs(gorl_run, tmp_path, target):
    d = tmp_path / "shared"
    shutil.copytree(gorl_run, d)
    marker = tmp_path / "pwned"
    if target.endswith("decoder.pt"):
        Payload.marker = str(marker)
        st = torch.load(d / target, weights_only=True)
        st["state"] = dict(st["state"], gift=Payload())
        torch.save(st, d / target)
    else:
        _plant(d / target, marker)
    from gorl import load_policy
    from gorl.errors import RunDirError
    from gorl.policy import load_decoder
    load = {"policy_final.pt": lambda: load_policy(d), "stages/stage0/encoder_best.pt": lambda: load_policy(d, stage=0),
            "stages/stage1/decoder.pt": lambda: load_decoder(d, 1)}[target]
    with pytest.raises(RunDirError) as e:
        load()
    msg = str(e.value)
    assert target.split("/")[-1] in msg and "refusing" in msg and "\n" not in msg, msg
    assert not marker.exists()
    if target.startswith("stages"):  # the analysis reads GoRL's stage files
        out = subprocess.run([sys.executable, "-m", "analysis.bimodality", str(d), "--out", str(tmp_path / "a"),
                              "--envs", "1", "--steps", "20"], capture_output=True, text=True, env=cli_env(), cwd=ROOT,
                             timeout=300)
        assert out.returncode != 0 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
        assert "refusing" in out.stderr
    else:
        out = cli("evaluate", d, "--episodes", 1, check=False)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "refusing" in out.stderr, out.stderr
    assert not marker.exists()


def test_a_planted_checkpoint_is_never_run_by_show_evaluate_load_policy_check_run_or_the_analysis(gorl_run,
                                                                                                 tmp_path):
    d = tmp_path / "shared"
    shutil.copytree(gorl_run, d)
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        st = torch.load(d / name, weights_only=True)  # our own run's checkpoint: tensors and plain data
        torch.save(dict(st, gift=Payload()), d / name)
    from gorl import load_policy
    load_policy(d)
    load_policy(d, "best")
    cli("show", d)
    cli("evaluate", d, "--episodes", 1)
    out = cli("check-run", d, check=False)  # reads them weights-only, and names each as not plain data
    assert out.returncode == 1 and out.stderr.splitlines() == [
        line for line in out.stderr.splitlines() if "holds pickled objects (io.open)" in line], out.stderr
    assert [line.split(": ")[1] for line in out.stderr.splitlines()] == ["checkpoint.pt", "checkpoint.prev.pt"]
    out = subprocess.run([sys.executable, "-m", "analysis.bimodality", str(d), "--out", str(tmp_path / "a"),
                          "--envs", "1", "--steps", "20", "--samples", "16"], capture_output=True, text=True,
                         env=cli_env(), cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()


# -- checkpoints: tensors and plain data, read with weights_only=True ---------------------------
@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """PPO smoke (conftest.PPO_SMOKE) killed with SIGKILL after its first iteration."""
    from conftest import PPO_SMOKE, kill_after_iterations
    d = tmp_path_factory.mktemp("killed") / "run"
    kill_after_iterations(PPO_SMOKE, d, iterations=1)
    return d


def _files(d: Path) -> dict:
    """Every file under ``d`` and its bytes, but the lock (a refused process takes over a dead
    holder's lock and leaves it without a PID, as every ended holder does)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("name", ["checkpoint.pt", "checkpoint.prev.pt"])
def test_a_planted_pickle_in_a_checkpoint_is_refused_before_anything_runs_or_changes(ppo_smoke_run, tmp_path, name):
    """Resuming a shared directory whose checkpoint holds a pickle: exit 2, one line naming the
    file, the pickle never runs (no marker file), and every file of --out is as it was."""
    from conftest import PPO_SMOKE
    d = tmp_path / "shared"
    shutil.copytree(ppo_smoke_run, d)
    (d / "status.json").unlink()  # as if it had been killed
    marker = tmp_path / "pwned"
    Payload.marker = str(marker)
    st = torch.load(d / name, weights_only=True)
    torch.save(dict(st, gift=Payload()), d / name)
    before = _files(d)
    out = cli(*PPO_SMOKE, "--out", d, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert str(d / name) in out.stderr and "refusing" in out.stderr and "new --out" in out.stderr, out.stderr
    assert not marker.exists()
    assert _files(d) == before
    # the loader itself refuses it too (a caller that skips the CLI's check, e.g. a library user)
    from gorl.core.run import Run
    from gorl.rundir import UnsafeCheckpoint
    if name == "checkpoint.pt":
        with pytest.raises(UnsafeCheckpoint, match="refusing"):
            Run(algo="ppo", task="cartpole-balance", seed=0, preset="smoke", dir=d, config={}).load_checkpoint()
        assert not marker.exists() and _files(d) == before


def test_a_gorl_runs_own_teacher_is_checked_for_pickled_checkpoints_until_it_completed(tmp_path):
    """A GoRL run resumes its own unfinished teacher/ with the same command, so a pickled checkpoint
    there is refused as the run's own; a completed teacher is never resumed (its final policy is
    read), so an older version's pickled checkpoint left in it is no reason to refuse the run."""
    from gorl import rundir
    d = tmp_path / "run"
    (d / rundir.TEACHER).mkdir(parents=True)
    torch.save({"state": Path("task")}, d / rundir.TEACHER / rundir.CHECKPOINT)  # an object pickled, as before
    with pytest.raises(rundir.UnsafeCheckpoint, match=r"teacher/checkpoint\.pt"):
        rundir.refuse_pickled_checkpoints(d)
    rundir.write_status(d / rundir.TEACHER, rundir.COMPLETED, None, 1920)
    rundir.refuse_pickled_checkpoints(d)


def test_an_old_pickled_checkpoint_is_refused_in_one_line_and_resumes_exactly_when_trusted(killed_run, ppo_smoke_run,
                                                                                           tmp_path):
    """A checkpoint in the format of earlier versions: refused in one line that says what to do,
    nothing changed; with --trust-checkpoint the run resumes from it and ends exactly as the
    uninterrupted run, leaving only plain-data checkpoints (check-run passes, the next resume
    needs no flag), also when it was killed after its last checkpoint (it saves no other)."""
    from conftest import PPO_SMOKE
    from gorl import rundir
    from gorl.check_run import check_run
    d = tmp_path / "old"
    shutil.copytree(killed_run, d)
    as_old_pickled_checkpoints(d)
    before = _files(d)
    out = cli(*PPO_SMOKE, "--out", d, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "checkpoint.pt" in out.stderr and "--trust-checkpoint" in out.stderr and "new --out" in out.stderr
    assert _files(d) == before
    last = tmp_path / "old_at_its_last_checkpoint"  # killed after its final checkpoint, before status.json
    shutil.copytree(ppo_smoke_run, last)
    (last / "status.json").unlink()
    as_old_pickled_checkpoints(last)
    for run in (d, last):
        out = cli(*PPO_SMOKE, "--out", run, "--trust-checkpoint")
        assert "resumed" in out.stdout
        assert strip_wall(run / "evals.csv") == strip_wall(ppo_smoke_run / "evals.csv")
        assert rundir.pickled_checkpoints(run) == [] and (run / "checkpoint.prev.pt").exists()
        assert check_run(run) == []


def test_a_resume_from_a_plain_checkpoint_ends_exactly(killed_run, ppo_smoke_run, tmp_path):
    """The smoke run's own checkpoints load with weights_only=True, and a resume of the killed
    one ends exactly as the uninterrupted run."""
    from conftest import PPO_SMOKE
    from gorl import rundir
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        assert rundir.pickled_globals(ppo_smoke_run / name) == []
        rundir.load_tensors(ppo_smoke_run / name)
    d = tmp_path / "r"
    shutil.copytree(killed_run, d)
    out = cli_here(*PPO_SMOKE, "--out", d)
    assert "resumed" in out.stdout
    assert strip_wall(d / "evals.csv") == strip_wall(ppo_smoke_run / "evals.csv")
