import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "disable")
# One torch thread in the test process, as every run under the CLI and Snakemake has: the tests'
# batches are small, and on a busy 2-core machine a second thread spinning against other
# processes made one decoder fit 20x slower (89 s vs 4 s, tests/test_gorl.py).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


def cli_env(**extra) -> dict:
    """The environment of a fresh test process: single-threaded, no rendering, tests/ importable
    (toy envs, plug-ins); ``extra`` replaces entries."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MUJOCO_GL="disable",
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def cli(*args, check=True, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python -m gorl ...`` in a fresh single-threaded process."""
    out = subprocess.run([sys.executable, "-m", "gorl", *map(str, args)], capture_output=True, text=True,
                         env=cli_env(**(env or {})), timeout=timeout, cwd=ROOT)
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}")
    return out


def cli_here(*args, check=True) -> subprocess.CompletedProcess:
    """``gorl-bench ARGS`` run by :func:`gorl.cli.main` in this test process, as :func:`cli` runs it
    (same working directory, output captured, exit code returned), without a fresh interpreter's
    2-4 s of imports (torch, dm_control, ...). For the runs a test is not about as a process: the
    reference of a resume, refusals, ``plan``. Tests of kills, signals, locks, the installed entry
    point or another environment keep :func:`cli`. Where a test compares a run made here with one
    made by :func:`cli`, it also checks that a run does not depend on what its process did before."""
    import contextlib
    import io

    from gorl.cli import main
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors (2), --help (0): as a process would exit
            code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
    done = subprocess.CompletedProcess(["gorl-bench", *argv], code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"exit {code}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def kill_when(args, out, ready, timeout: float = 300) -> None:
    """Start ``python -m gorl ARGS --out OUT``, SIGKILL it once ``ready(OUT)`` holds (or it ends,
    or ``timeout`` seconds pass); the run must not have finished."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "gorl", *map(str, args), "--out", str(out)], env=cli_env(),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not ready(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "status.json").exists(), "run finished before it could be killed"


def kill_after_iterations(args, out, iterations: int = 2, timeout: float = 300) -> None:
    """:func:`kill_when` ``iterations`` iterations are in metrics.csv (the smoke presets
    checkpoint every iteration)."""
    def ready(d):
        m = d / "metrics.csv"
        return m.exists() and len(m.read_text().splitlines()) > iterations
    kill_when(args, out, ready, timeout)


def after_stage1_decoder(out) -> bool:
    """A GoRL run has written its stage-1 decoder (a point inside the stage machinery)."""
    return (out / "stages/stage1/decoder.pt").exists()


def through_checkpoint(state):
    """``state`` as a checkpoint holds it: encoded as tensors and plain data, saved, read back with
    ``torch.load(weights_only=True)`` (which refuses anything else) and decoded."""
    import io

    from gorl import plaindata
    buf = io.BytesIO()
    torch.save(plaindata.encode(state), buf)
    buf.seek(0)
    return plaindata.decode(torch.load(buf, weights_only=True))


def as_old_pickled_checkpoints(d, task: str = "cartpole-balance") -> None:
    """Rewrite run directory ``d``'s checkpoint.pt and checkpoint.prev.pt in the format of earlier
    versions: numpy arrays pickled, and every dm_control env state's task object pickled (as the
    older ``DMCEnv.get_state`` did), wherever in the checkpoint the env states are."""
    import pickle

    from gorl import plaindata, rundir
    from gorl.envs import make_env

    def pickle_tasks(x):
        if isinstance(x, dict):
            if {"mj_state", "task", "step_count"} <= x.keys():
                env = make_env(task, 0)
                plaindata.restore_object(env._env.task, x["task"], "task")
                x["task"] = pickle.dumps(env._env.task)
            for v in x.values():
                pickle_tasks(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                pickle_tasks(v)

    for name in (rundir.CHECKPOINT, rundir.CHECKPOINT_PREVIOUS):
        if (d / name).exists():
            st = plaindata.decode(torch.load(d / name, weights_only=True))  # numpy arrays, as pickled before
            pickle_tasks(st)
            torch.save(st, d / name)
            assert rundir.pickled_globals(d / name)


def strip_wall(path) -> list[str]:
    """evals.csv lines without the last column (wall_time)."""
    return [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]


PPO_SMOKE = ["train", "ppo", "cartpole-balance", "--seed", "0", "--steps", "3840", "--preset", "smoke", "--quiet"]
"""The arguments of :func:`ppo_smoke_run` (add ``--out DIR``)."""


@pytest.fixture(scope="session")
def ppo_smoke_run(tmp_path_factory) -> Path:
    """One real run made once per session and shared by the tests that only read it (copy it,
    ``shutil.copytree``, to change it): PPO ``smoke`` on cartpole-balance, seed 0, two
    iterations (3840 env steps, 3 evaluations). Made by ``cli_here(*PPO_SMOKE, "--out", DIR)``, in the test
    process: tests compare runs resumed in fresh processes with it."""
    d = tmp_path_factory.mktemp("ppo_smoke") / "run"
    cli_here(*PPO_SMOKE, "--out", d)
    return d


GORL_SMOKE = ["train", "gorl_fm", "cartpole-balance", "--seed", "0", "--steps", "3840", "--preset", "smoke", "--quiet",
              "--set", "stage_steps=[1, 1]"]
"""The arguments of :func:`gorl_smoke_run` (add ``--out DIR``): two stages of one iteration each,
so that stage 0's data, decoder fit and best encoder and stage 1's encoder are all there."""


@pytest.fixture(scope="session")
def gorl_smoke_run(tmp_path_factory) -> tuple[Path, str]:
    """One real GoRL-FM run made once per session, and what it printed, shared by the tests that only
    read it (copy it, ``shutil.copytree``, to change it). Made by ``cli_here(*GORL_SMOKE, "--out", DIR)``."""
    d = tmp_path_factory.mktemp("gorl_smoke") / "run"
    return d, cli_here(*GORL_SMOKE, "--out", d).stdout


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``scripts/test.sh`` runs ``-n auto --dist loadgroup``): the tests that
    share a module-scoped fixture (a pipeline run, a Slurm cluster, a training run) form one group
    that one worker runs, so the fixture is made once; every other test goes to whichever worker
    is free. Without xdist the mark does nothing."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info and any(defs and defs[-1].scope == "module" for defs in info.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
