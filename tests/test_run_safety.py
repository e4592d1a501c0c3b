"""A run directory never loses data, and bad input is one clear line (issue 11, point 6).

Real parts only: the CLI in subprocesses, real dm_control physics, real Gymnasium envs.
"""
import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from conftest import ROOT, cli, cli_env, cli_here

SMOKE = ["--preset", "smoke", "--quiet"]


def _one_line_error(out):
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    return out.stderr


def _strip_wall(d):
    return [",".join(line.split(",")[:-1]) for line in (d / "evals.csv").read_text().splitlines()]


# -- --force removes only what a run writes ----------------------------------------------
def test_force_refuses_a_directory_with_foreign_files(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("three years of work")
    (d / "data").mkdir()
    (d / "data" / "measurements.csv").write_text("1,2,3\n")
    err = _one_line_error(cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, "--force", *SMOKE,
                                   check=False))
    assert "thesis.tex" in err or "data" in err
    assert (d / "thesis.tex").read_text() == "three years of work"
    assert (d / "data" / "measurements.csv").exists()
    assert sorted(os.listdir(d)) == ["data", "thesis.tex"]  # nothing added either (no .lock left behind)


def test_force_starts_over_on_a_run_directory(tmp_path):
    d = tmp_path / "r"
    cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, *SMOKE)
    first = (d / "status.json").stat().st_mtime_ns
    cli_here("train", "ppo", "cartpole-balance", "--steps", 3840, "--out", d, "--force", *SMOKE)
    assert json.loads((d / "status.json").read_text())["env_steps"] == 3840
    assert (d / "status.json").stat().st_mtime_ns != first


# -- a lock on --out -----------------------------------------------------------------------
def test_second_process_on_the_same_out_stops_at_once(tmp_path):
    d = tmp_path / "r"
    args = ["train", "ppo", "cartpole-balance", "--steps", "2000000", "--out", str(d), *SMOKE]
    first = subprocess.Popen([sys.executable, "-m", "gorl", *args], env=cli_env(), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (d / "evals.csv").exists():
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the test could start a second one"
        t0 = time.time()
        second = cli(*args, check=False)
        err = _one_line_error(second)
        assert str(first.pid) in err
        assert time.time() - t0 < 60
        assert first.poll() is None  # the holder is untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the lock of a killed process is stale: a new run takes it over
    out = cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, "--force", *SMOKE)
    assert f"took over the lock of process {first.pid}" in out.stdout
    assert json.loads((d / "status.json").read_text())["status"] == "completed"
    # a run that ended released its lock: the next one takes it silently
    out = cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, "--force", *SMOKE)
    assert "took over" not in out.stdout


# -- checkpoints: the previous one is kept until the new one is complete ---------------------
def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    ref, d = tmp_path / "ref", tmp_path / "r"
    args = ["train", "ppo", "cartpole-balance", "--seed", 2, "--steps", 5760, *SMOKE]
    cli_here(*args, "--out", ref)
    cli_here(*args, "--out", d)
    ckpt = d / "checkpoint.pt"
    (d / "status.json").unlink()  # as if killed before it could finish
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])  # e.g. disk full during a copy
    out = cli(*args, "--out", d)
    said = [ln for ln in (out.stdout + out.stderr).splitlines() if "checkpoint.pt" in ln]
    assert len(said) >= 1 and any("previous" in ln for ln in said), out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert json.loads((d / "status.json").read_text())["status"] == "completed"
    assert _strip_wall(d) == _strip_wall(ref)


def test_no_usable_checkpoint_is_one_line_naming_the_file(tmp_path, ppo_smoke_run):
    import shutil

    from conftest import PPO_SMOKE
    d = tmp_path / "r"
    shutil.copytree(ppo_smoke_run, d)  # the shared finished run (conftest), copied
    args = [*PPO_SMOKE, "--out", d]
    (d / "status.json").unlink()
    for f in d.iterdir():
        if f.name.startswith("checkpoint"):
            f.write_bytes(f.read_bytes()[:1000])
    evals = (d / "evals.csv").read_bytes()
    err = _one_line_error(cli_here(*args, check=False))
    assert "checkpoint.pt" in err and "--force" in err
    assert (d / "evals.csv").read_bytes() == evals  # nothing computed is lost


# -- numbers people type ------------------------------------------------------------------
@pytest.mark.parametrize("raw, value", [
    ("3e-4", 3e-4), ("1e9", 1e9), ("-1e-3", -1e-3), (".5", 0.5), ("1_000_000", 1_000_000),
    ("1E+3", 1000.0), ("+2", 2), ("0.25", 0.25), ("7", 7),
])
def test_set_accepts_the_numbers_people_write(raw, value):
    from gorl.config import parse_set
    got = parse_set([f"x={raw}"])["x"]
    assert got == value and isinstance(got, (int, float)) and not isinstance(got, bool)


def test_set_numbers_reach_the_config(tmp_path):
    from gorl.config import build_config
    from gorl.config import parse_set
    from gorl import registry
    ppo = registry.get("ppo")
    cfg = build_config(ppo.config_cls, ppo.presets_file, "smoke", "cartpole-balance",
                       parse_set(["learning_rate=3e-4", "total_steps=1e5", "adam_eps=.5", "num_envs=1_6"]))
    assert cfg.learning_rate == 3e-4 and cfg.total_steps == 100_000 and cfg.adam_eps == 0.5
    assert cfg.num_envs == 16 and isinstance(cfg.total_steps, int)


def test_set_strings_stay_strings():
    from gorl.config import parse_set
    assert parse_set(["a=legacy", "b=e5", "c=1e", "d=true", "e=null", "f=[1, 2]"]) == \
        {"a": "legacy", "b": "e5", "c": "1e", "d": True, "e": None, "f": [1, 2]}


def test_pipeline_config_accepts_the_numbers_people_write(tmp_path):
    """Config files and `snakemake --config`: a dry run shows the CLI arguments every job would get."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: nums\nalgorithms: [ppo, fpo]\ntasks: [cartpole-balance]\nseeds: [0]\nsteps: 1e4\n"
                   "algorithm_overrides: {ppo: {set: {learning_rate: 3e-4, adam_eps: 1E-8}}}\n")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                          str(tmp_path), "-n", "-p", "--configfile", str(cfg), "--config", "seeds=[0,1]",
                          "algorithm_overrides={fpo: {steps: 1_920, set: {learning_rate: 1e-3, clip_eps: .5}}, "
                          "ppo: {set: {learning_rate: 3e-4, gamma: 1e0}}}"],
                         capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "ppo cartpole-balance --seed 1 --steps 10000 " in text, text[-3000:]
    assert "fpo cartpole-balance --seed 1 --steps 1920 " in text, text[-3000:]
    for arg in ("learning_rate=0.0003", "gamma=1.0", "learning_rate=0.001", "clip_eps=0.5"):
        assert f"--set {arg}" in text, (arg, text[-3000:])


# -- bad task input: one line, exit 2, before any env step ------------------------------------
@pytest.mark.parametrize("task, culprit", [
    ("gym:CartPole-v1", "CartPole-v1"),            # Discrete actions
    ("gym:Test/Unbounded-v0", "Unbounded-v0"),     # unbounded Box actions
    ("gym:Test/DictActions-v0", "DictActions-v0"),  # a Dict action space
    ("cheetah", "cheetah"),
    ("gym:", "gym:"),
])
def test_unsupported_tasks_are_one_line_errors(tmp_path, task, culprit):
    d = tmp_path / "r"
    err = _one_line_error(cli_here("train", "ppo", task, "--import", "toy_envs", "--out", d, *SMOKE, check=False))
    assert culprit in err
    assert not (d / "checkpoint.pt").exists() and not (d / "evals.csv").exists()


# -- the gym adapter is a well-behaved Gymnasium env ------------------------------------------
@pytest.mark.parametrize("task", ["cartpole-balance", "gym:Pendulum-v1", "gym:MountainCarContinuous-v0"])
# the flat observation space is (-inf, inf) on purpose (dm_control declares no bounds); the
# checker's advice about that is not a failure
@pytest.mark.filterwarnings("ignore:.*A Box observation space m(in|ax)imum value is:UserWarning")
def test_envs_pass_the_gymnasium_checker(task):
    from gorl.envs import make_env
    env = make_env(task, seed=0)
    check_env(env, skip_render_check=True)
    # same seed, same first observation; the adapter seeds through gym.Env.reset
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    assert (a == b).all()
    assert isinstance(env.np_random, type(gym.make("Pendulum-v1").np_random))
