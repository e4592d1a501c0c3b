"""A run you can watch, inspect and use (issue 21, points 1-5): live log lines under --quiet,
TensorBoard event files read back by TensorBoard's own reader, sinks that fail without
stopping training, `show`, `gorl.load_policy` for every built-in algorithm and a plug-in,
`evaluate --video`, file modes from the umask and the effective budget in config.yaml.

Real parts only: the CLI in subprocesses, real dm_control physics.
"""
from __future__ import annotations

import ctypes.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, TESTS, cli, cli_env, cli_here

SMOKE = ["--preset", "smoke", "--quiet"]


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """One PPO smoke run, started under umask 027 with a budget that is not whole iterations."""
    d = tmp_path_factory.mktemp("observe") / "ppo"
    out = subprocess.run(["bash", "-c", 'umask 027 && exec "$0" -m gorl "$@"', sys.executable, "train", "ppo",
                          "cartpole-balance", "--steps", "4000", "--out", str(d), *SMOKE],
                         capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return d, out.stdout


def test_quiet_run_prints_one_line_per_evaluation(ppo_run):
    d, stdout = ppo_run
    lines = [ln for ln in stdout.splitlines() if ln.startswith("eval ")]
    evals = (d / "evals.csv").read_text().splitlines()[1:]
    assert len(lines) == len(evals) == 3, stdout
    for ln, row in zip(lines, evals):
        step, ret = int(row.split(",")[0]), float(row.split(",")[1])
        assert f"env step {step:,}/3,840" in ln and f"return {ret:.1f}" in ln and "stage 0" in ln, ln
        assert "steps/s" in ln
    assert "ETA" in lines[1]  # a rate is known once the run has trained


def test_effective_budget_is_recorded_and_said_once(ppo_run):
    d, stdout = ppo_run
    said = [ln for ln in stdout.splitlines() if "rounded" in ln]
    assert len(said) == 1 and "4,000" in said[0] and "3,840" in said[0], stdout
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    assert cfg["effective_total_steps"] == 3840
    assert cfg["hyperparameters"]["total_steps"] == 4000  # what was asked stays as asked
    assert json.loads((d / "status.json").read_text())["env_steps"] == 3840


def test_run_files_follow_the_umask(ppo_run):
    d, _ = ppo_run
    files = [p for p in d.rglob("*") if p.is_file()]
    assert len(files) >= 7
    for p in files:  # umask 027: rw-r----- (mkstemp alone would give rw-------)
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, (p, oct(p.stat().st_mode))


def test_tensorboard_event_files_read_back_by_tensorboard(ppo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    d, _ = ppo_run
    acc = EventAccumulator(str(d / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("charts/episodic_return", "charts/SPS", "losses/value_loss", "losses/policy_loss",
                "losses/approx_kl", "charts/train_episodic_return"):
        assert tag in tags, tags
    got = [(e.step, e.value) for e in acc.Scalars("charts/episodic_return")]
    want = [(int(r.split(",")[0]), float(r.split(",")[1])) for r in (d / "evals.csv").read_text().splitlines()[1:]]
    assert [s for s, _ in got] == [s for s, _ in want]
    assert np.allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
    assert [e.step for e in acc.Scalars("losses/value_loss")] == [1920, 3840]


def test_show_prints_the_summary_and_plots(ppo_run, tmp_path):
    d, _ = ppo_run
    evals = [r.split(",") for r in (d / "evals.csv").read_text().splitlines()[1:]]
    out = cli_here("show", d, "--plot", tmp_path / "curves.png")
    head, row = out.stdout.splitlines()[:2]
    for word in ("algorithm", "task", "seed", "preset", "rollout", "status", "env steps", "final", "best", "wall",
                 "steps/s"):
        assert word in head
    for word in ("ppo", "cartpole-balance", "smoke", " step ", "completed", "3,840", f"{float(evals[-1][1]):.1f}",
                 f"{max(float(r[1]) for r in evals):.1f}"):
        assert word in row, (word, row)
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    summary, = json.loads(cli_here("show", d, "--json").stdout)  # the same fields, for scripts
    assert {k: summary[k] for k in ("algorithm", "task", "preset", "rollout", "status", "env_steps")} == \
        {"algorithm": "ppo", "task": "cartpole-balance", "preset": "smoke", "rollout": "step",
         "status": "completed", "env_steps": 3840}
    assert summary["best_return"] == pytest.approx(max(float(r[1]) for r in evals))
    # the process's peak memory, for sizing mem_mb (torch and dm_control alone take > 100 MiB)
    memory = json.loads((d / "provenance.json").read_text())["memory"]
    assert summary["peak_rss_mib"] == memory["peak_rss_mib"] > 100 and memory["peak_cuda_mib"] is None


def test_show_into_a_closed_pipe_stops_quietly(ppo_run):
    """`gorl-bench show results/ | head`: the reader gone, show stops as cat does (exit 141, no
    traceback)."""
    d, _ = ppo_run
    p = subprocess.Popen([sys.executable, "-m", "gorl", "show", str(d)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    p.stdout.close()  # before the child has printed anything (its imports take a second)
    err = p.stderr.read().decode()
    assert (p.wait(timeout=120), err) == (141, "")


def test_show_on_a_folder_of_runs_and_a_bad_path(tmp_path):
    err = cli_here("show", tmp_path / "nothing", check=False)
    assert err.returncode == 2 and err.stderr.count("\n") == 1 and "nothing" in err.stderr


# -- load_policy: every algorithm, deterministic and sampled ------------------------------------
def _last_eval_seeds(d: Path) -> tuple[float, float, list[int]]:
    """The last evaluation's return, its spread over episodes and its episodes' env seeds (stream EVAL_STREAM + 1 + its
    index among its stage's evaluations, as OnPolicyTrainer.evaluate draws them)."""
    from gorl.core.run import EVAL_STREAM, env_seeds
    rows = [r.split(",") for r in (d / "evals.csv").read_text().splitlines()[1:]]
    stage = rows[-1][4]
    index = sum(r[4] == stage for r in rows) - 1
    seed = yaml.safe_load((d / "config.yaml").read_text())["seed"]
    return float(rows[-1][1]), float(rows[-1][2]), env_seeds(seed, EVAL_STREAM + 1 + index, int(rows[-1][3]))


def _check_policy(d: Path, device: str = "cpu") -> None:
    import torch

    from gorl import load_policy
    from gorl.policy import evaluate_policy
    torch.manual_seed(0)  # FPO/DPPO's evaluation draws flow noise: the same draws in every test run
    last, last_std, seeds = _last_eval_seeds(d)
    policy = load_policy(d, device=device)
    # FPO and DPPO evaluate with the reference's noisy flow sample (eval_mode stochastic)
    exact = getattr(policy.agent, "eval_mode", None) != "stochastic"
    same = evaluate_policy(policy, 2, seeds=seeds)
    if exact:  # the run's last evaluation, repeated: same episodes, same actions, same return
        assert np.isclose(same.mean(), last, rtol=1e-4, atol=1e-3), (same, last)
    # fresh episodes: within the noise of two 2-episode means (3 x the per-episode spreads, + 5%)
    fresh = evaluate_policy(policy, 2)
    for got in (same, fresh):
        tol = 3 * np.hypot(last_std, got.std()) + 0.05 * abs(last)
        assert abs(got.mean() - last) < tol, (got, last, last_std)
    from gorl.envs import env_dims
    obs_dim, act_dim = env_dims(policy.task)
    obs = np.random.default_rng(0).normal(size=(4, obs_dim)).astype(np.float32)
    a = policy(obs)
    assert a.shape == (4, act_dim) and np.all(np.abs(a) <= 1)
    assert policy(obs[0]).shape == (act_dim,) and torch.is_tensor(policy(torch.as_tensor(obs)))
    torch.manual_seed(0)
    s1 = policy(obs, deterministic=False)
    assert not np.allclose(s1, a)  # sampled actions differ from the evaluation action
    if exact:
        assert np.allclose(policy(obs), a)  # and the evaluation action repeats
    best = load_policy(d, "best", device=device)
    assert best.eval_return == max(float(r.split(",")[1]) for r in (d / "evals.csv").read_text().splitlines()[1:])
    from gorl import rundir  # each policy names the bytes it was read from (a GoRL run records its teacher's)
    assert (policy.sha256, best.sha256) == (rundir.file_sha256(d / "policy_final.pt"),
                                           rundir.file_sha256(d / "policy_best.pt"))


def test_load_policy_reproduces_the_last_evaluation(ppo_run):
    _check_policy(ppo_run[0])


@pytest.mark.parametrize("algo", ["fpo", "dppo", "gorl_fm", "gorl_diffusion"])
def test_load_policy_every_builtin_algorithm(tmp_path, algo, request):
    if algo == "gorl_fm":  # the shared run (conftest), which has the same two stages
        d = request.getfixturevalue("gorl_smoke_run")[0]
    else:
        d = tmp_path / algo
        stages = ["--set", "stage_steps=[1, 1]"] if algo.startswith("gorl") else []  # two stages fit 3840 steps
        cli_here("train", algo, "cartpole-balance", "--steps", 3840, "--out", d, *SMOKE, *stages)
    _check_policy(d)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device on this machine")
def test_load_policy_on_gpu(ppo_run):
    _check_policy(ppo_run[0], device="cuda")


def test_load_policy_of_a_plugin(tmp_path):
    """examples/ppo_fixed_std, registered through an entry point as an installed plug-in is."""
    site = tmp_path / "site"
    info = site / "ppo_fixed_std-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ppo-fixed-std\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[gorl_bench.algorithms]\nppo_fixed_std = ppo_fixed_std:algorithm\n")
    path = os.pathsep.join([str(site), str(ROOT / "examples" / "ppo_fixed_std"), str(TESTS),
                            os.environ.get("PYTHONPATH", "")])
    d = tmp_path / "run"
    cli("train", "ppo_fixed_std", "cartpole-balance", "--steps", 3840, "--out", d, *SMOKE, env={"PYTHONPATH": path})
    check = ("import sys; from test_observe import _check_policy; from pathlib import Path; "
             "_check_policy(Path(sys.argv[1])); print('ok')")
    out = subprocess.run([sys.executable, "-c", check, str(d)], capture_output=True, text=True, cwd=ROOT,
                         env=cli_env(PYTHONPATH=path), timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr


# -- evaluate, with a video rendered offscreen -----------------------------------------------
def test_evaluate_prints_returns(ppo_run):
    d, _ = ppo_run
    out = cli_here("evaluate", d, "--episodes", 2, "--which", "best")
    assert "over 2 episodes" in out.stdout and "deterministic" in out.stdout


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is None,
                    reason="libOSMesa is not installed (apt-get install libosmesa6; scripts/test.sh does as root)")
@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_evaluate_writes_a_video(ppo_run, tmp_path, suffix):
    from PIL import Image
    if suffix == ".mp4":
        pytest.importorskip("imageio_ffmpeg", reason="an .mp4 needs imageio-ffmpeg (the video extra)")
    d, _ = ppo_run
    video = tmp_path / f"episode{suffix}"
    out = cli("evaluate", d, "--episodes", 1, "--video", video, env={"MUJOCO_GL": "osmesa"})
    assert "frames" in out.stdout and video.stat().st_size > 10_000, out.stdout
    if suffix == ".gif":
        im = Image.open(video)
        assert im.n_frames > 100  # cartpole: 1000 steps at 100 Hz, written at 25 fps
        im.seek(im.n_frames // 2)
        frame = np.asarray(im.convert("RGB"))
    else:
        import imageio_ffmpeg
        reader = imageio_ffmpeg.read_frames(str(video))
        meta = next(reader)
        frames = [np.frombuffer(f, np.uint8) for f in reader]
        assert len(frames) > 100
        w, h = meta["size"]
        frame = frames[len(frames) // 2].reshape(h, w, 3)
    assert frame.shape == (240, 320, 3)
    # the cart and pole are orange-ish (red > blue) on a blue-grey scene: the robot is in the picture
    orange = (frame[..., 0].astype(int) - frame[..., 2].astype(int)) > 60
    assert orange.sum() > 200, orange.sum()


def test_evaluate_video_bad_name_is_one_line(ppo_run, tmp_path):
    d, _ = ppo_run
    out = cli("evaluate", d, "--video", tmp_path / "x.avi", check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and ".gif" in out.stderr


# -- sinks ---------------------------------------------------------------------------------
def test_a_failing_sink_neither_stops_training_nor_changes_results(tmp_path, monkeypatch, capsys):
    """TensorBoard's writer raises at its 5th scalar: one line, the run completes, and
    evals.csv equals that of a run without TensorBoard."""
    from gorl.cli import main
    from gorl.sinks import TensorBoardSink

    calls = {"n": 0}
    real = TensorBoardSink.scalars

    def flaky(self, step, values):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("the event file's disk went away")
        real(self, step, values)

    monkeypatch.setattr(TensorBoardSink, "scalars", flaky)
    args = ["train", "ppo", "cartpole-balance", "--steps", "3840", "--preset", "smoke", "--quiet", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if "sink off" in ln]
    assert len(said) == 1 and "tensorboard sink off" in said[0] and "disk went away" in said[0], said
    assert main([*args, "--out", str(tmp_path / "b"), "--no-tensorboard"]) == 0
    assert not (tmp_path / "b" / "tensorboard").exists()

    def strip(p):
        return [ln.rsplit(",", 1)[0] for ln in (p / "evals.csv").read_text().splitlines()]

    assert strip(tmp_path / "a") == strip(tmp_path / "b")
    assert json.loads((tmp_path / "a" / "status.json").read_text())["status"] == "completed"


def test_wandb_without_the_package_is_one_line_before_training(tmp_path):
    try:
        import wandb  # noqa: F401
        pytest.skip("wandb is installed here")
    except ImportError:
        pass
    d = tmp_path / "r"
    out = cli_here("train", "ppo", "cartpole-balance", "--out", d, "--wandb", "offline", *SMOKE, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "pip install wandb" in out.stderr, out.stderr
    assert not (d / "evals.csv").exists()


# -- GoRL's stage events are logged --------------------------------------------------------
def test_gorl_logs_its_stage_events(gorl_smoke_run):
    run, stdout = gorl_smoke_run  # conftest: two stages, --quiet
    lines = stdout.splitlines()
    summary = json.loads((run / "stages/stage0/dataset_summary.json").read_text())
    collected = [ln for ln in lines if ln.startswith("stage 0: collected")]
    fitted = [ln for ln in lines if ln.startswith("stage 0: decoder 1 fitted")]
    assert len(collected) == 1 and f"{summary['rows']:,} rows" in collected[0], lines
    unit = "validations" if "decoder_train_steps" in summary else "epochs"  # the release's fit: steps
    assert len(fitted) == 1 and f"{summary['decoder_epochs']} {unit}" in fitted[0] and "validation loss" in fitted[0]
    assert f"{summary['decoder_best_val_loss']:.4g}" in fitted[0]
    assert sum(ln.startswith("eval ") for ln in lines) == len((run / "evals.csv").read_text().splitlines()) - 1


def test_a_video_of_a_gym_task_is_refused_in_one_line(tmp_path):
    """dm_control suite and playground: tasks render; a gym: task is told so before an env is built."""
    from types import SimpleNamespace

    from gorl.errors import BadInput
    from gorl.policy import record_video
    with pytest.raises(BadInput, match="rendering is for dm_control suite and playground: tasks; gym:Pendulum-v1 "
                                       "is not one"):
        record_video(SimpleNamespace(task="gym:Pendulum-v1", seed=0), tmp_path / "v.gif")


_PLAYGROUND_VIDEO = """
import json, sys
import numpy as np, torch
from PIL import Image
from gorl import registry
from gorl.config import build_config
from gorl.core.normalizer import RunningNormalizer
from gorl.envs import env_dims
from gorl.policy import Policy, evaluate_policy, record_video
task, out = "playground:CartpoleBalance", sys.argv[1]
spec = registry.get("ppo")
cfg = build_config(spec.config_cls, spec.presets_file, "smoke", task)
torch.manual_seed(0)
agent = spec.make_agent(cfg, *env_dims(task)).eval()
policy = Policy(agent, RunningNormalizer(env_dims(task)[0], cfg.obs_norm_mode), algorithm="ppo", task=task, seed=0,
                which="untrained", stage=0, env_step=0, eval_return=None, config={}, device=torch.device("cpu"))
info = record_video(policy, out, max_fps=5)
im = Image.open(out)
im.seek(im.n_frames // 2)
frame = np.asarray(im.convert("RGB"))
orange = int(((frame[..., 0].astype(int) - frame[..., 2].astype(int)) > 60).sum())
print(json.dumps({**info, "n_frames": im.n_frames, "shape": frame.shape, "orange": orange,
                  "evaluated": float(evaluate_policy(policy, 1)[0])}))
"""


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is None,
                    reason="libOSMesa is not installed (apt-get install libosmesa6; scripts/test.sh does as root)")
def test_a_playground_task_renders_the_episode_that_evaluate_scores(tmp_path):
    """`evaluate --video` on a playground: task: the MJX state of a one-env batch copied into
    MuJoCo and rendered offscreen; the episode is evaluate's first (same return) and the cart is
    in the picture. (MUJOCO_GL is read when MuJoCo loads: a fresh process.)"""
    pytest.importorskip("mujoco_playground", reason="playground: tasks need the playground extra")
    video = tmp_path / "episode.gif"
    out = subprocess.run([sys.executable, "-c", _PLAYGROUND_VIDEO, str(video)], capture_output=True, text=True,
                         env=cli_env(MUJOCO_GL="osmesa"), timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["frames"] == info["n_frames"] and info["fps"] == pytest.approx(5.0) and 10 <= info["frames"] <= 201, info
    assert info["return"] == info["evaluated"], info
    assert info["shape"] == [240, 320, 3] and info["orange"] > 200, info
