"""Humanoid (spec 14): the tasks, the humanoid profile of every algorithm, GoRL's teacher path
(teacher run, data set, gate), bounded latent and actions, decoder targets, warm decoder fits,
encoder hand-off, the benchmark anchor, resume after kill -9.

The GoRL runs here use cartpole-balance (seconds) with the humanoid switches set; the humanoid
runs themselves are marked slow."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, after_stage1_decoder, cli, cli_here, kill_when
from gorl import rundir
from gorl.algorithm.config import DecoderFitConfig
from gorl.algorithm.decoder import Decoder, bounded_action, fit_decoder
from gorl.algorithm.gorl import make_encoder
from gorl.config import build_config
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.core.normalizer import RunningNormalizer
from gorl.core.run import Run
from gorl.registry import get

HUMANOID_SWITCHES = ["--set", "action_semantics=bounded", "--set", "latent_bounded=true",
                     "--set", "obs_norm_mode=welford", "--set", "obs_stats_timing=pre_update",
                     "--set", "decoder_split=transition", "--set", "decoder_target_clip=1.0",
                     "--set", "stage0.decoder_pairwise_weight=0",
                     # for speed: 2 teacher episodes, 1000 collected steps per stage, 2 collector envs
                     "--set", "teacher_episodes=2", "--set", "collect_envs=2", "--set", "collect_episodes=1"]


def _evals(d: Path) -> list[dict]:
    with open(d / "evals.csv") as f:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]


def _cfg(algo: str = "gorl_fm", preset: str = "smoke", task: str = "cartpole-balance", **kw):
    a = get(algo)
    return build_config(a.config_cls, a.presets_file, preset, task, kw)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """One small ppo_teacher run on cartpole-balance (welford statistics, as the encoder's)."""
    out = tmp_path_factory.mktemp("teacher") / "run"
    cli_here("train", "ppo_teacher", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--seed", "0",
             "--quiet", "--out", out, "--set", "obs_norm_mode=welford")
    return out


# -- tasks and presets ------------------------------------------------------------------------
def test_humanoid_tasks_are_paper_tasks_with_their_dims():
    from gorl.envs import PAPER_TASKS, env_dims
    from gorl.envs.names import PAPER_TASKS as PLAYGROUND_TASKS, suite_name
    assert {"humanoid-stand", "humanoid-run"} <= set(PAPER_TASKS)
    assert {"playground:HumanoidStand", "playground:HumanoidRun"} <= set(PLAYGROUND_TASKS)
    assert suite_name("playground:HumanoidRun") == "humanoid-run"
    assert env_dims("humanoid-stand") == env_dims("humanoid-run") == (67, 21)


@pytest.mark.slow
def test_playground_humanoids_resolve_with_the_suite_dims():
    """MJX humanoids on a CPU: only the names and dims (the model compiles in ~10 s each)."""
    pytest.importorskip("mujoco_playground")
    from gorl.envs import check_task, env_dims
    for task in ("playground:HumanoidStand", "playground:HumanoidRun"):
        check_task(task)
        assert env_dims(task) == (67, 21)


def test_humanoid_profile_resolves_to_the_release():
    for task in ("humanoid-stand", "humanoid-run", "playground:HumanoidRun"):
        ppo = _cfg("ppo", "paper", task)
        assert (ppo.learning_rate, ppo.clip_eps, ppo.max_grad_norm, ppo.value_loss_coef) == (1e-3, 0.3, None, 0.5)
        assert not ppo.eval_deterministic and ppo.total_steps == 206438400 == 210 * ppo.steps_per_iteration
        assert ppo.matmul_precision == "fp32"
        assert _cfg("ppo_teacher", "paper", task).total_steps == 185794560 == 189 * ppo.steps_per_iteration
        for algo in ("fpo", "dppo"):  # pre-tanh actions, the one baseline budget
            cfg = _cfg(algo, "paper", task)
            assert cfg.matmul_precision == "fp32" and cfg.total_steps == 179896320
    assert _cfg("ppo", "paper", "cheetah-run").matmul_precision == "auto"
    for algo in ("gorl_fm", "gorl_diffusion"):
        stand, run = _cfg(algo, "paper", "humanoid-stand"), _cfg(algo, "paper", "humanoid-run")
        for cfg in (stand, run):
            assert (cfg.teacher, cfg.action_semantics, cfg.latent_bounded) == ("ppo_teacher", "bounded", True)
            assert all(cfg.for_stage(k).clip_eps == 0.3 for k in range(cfg.num_stages))
            assert cfg.decoder_hidden == [128, 128, 128, 128] and not cfg.eval_deterministic
        assert stand.stage_steps == [60000000, 60000000, 30000000, 30000000] and stand.benchmark_start_steps == 0
        assert (stand.teacher_min_return, stand.teacher_warm_start) == (60.0, False)
        assert run.stage_steps == [60000000, 60000000] and run.total_steps == 120000000
        assert (run.benchmark_start_steps, run.teacher_min_return, run.teacher_warm_start) == (60000000, 15.0, True)
        assert run.stage_offsets() == [60000000, 60000000 + 61 * run.steps_per_iteration]
    fm = _cfg("gorl_fm", "paper", "humanoid-stand")
    assert [fm.for_stage(k).decoder_obs_stats for k in range(4)] == ["fit", "cumulative", "frozen", "frozen"]
    assert [fm.for_stage(k).decoder_max_epochs for k in range(4)] == [100, 20, 20, 20]
    assert [fm.for_stage(k).learning_rate for k in range(4)] == [1e-3, 3e-4, 3e-4, 3e-4]
    assert _cfg("gorl_diffusion", "paper", "humanoid-run").encoder_handoff == "final"
    assert _cfg("gorl_fm", "paper", "humanoid-run").encoder_handoff == "best"
    smoke = _cfg("gorl_fm", "smoke", "humanoid-stand")  # no floor at smoke scale
    assert smoke.teacher_min_return is None and smoke.teacher == "ppo_teacher"


def test_list_shows_the_humanoid_values_and_their_origin():
    out = cli_here("list", "gorl_fm", "--preset", "paper", "--task", "humanoid-run").stdout
    line = next(x for x in out.splitlines() if x.startswith("benchmark_start_steps"))
    assert "60000000" in line and "tasks[humanoid-run]" in line


# -- bounded latent, bounded actions, targets ---------------------------------------------------
def test_bounded_latent_reaches_the_decoder_in_minus_one_one_and_the_env_action_is_clipped():
    cfg = _cfg(latent_bounded=True, action_semantics="bounded")
    seen = []

    class Recording(Decoder):
        def forward(self, obs_raw, z):
            seen.append(z)
            return 3.0 * z  # beyond [-1, 1]: the env action clips it

    dec = Recording("fm", 5, 1, [8], identity=True)
    enc = make_encoder(cfg, 0, 5, 1, dec)
    assert enc.entropy_tanh_correction  # Brax's tanh-normal entropy
    with torch.no_grad():
        enc.actor.net[-1].bias.fill_(5.0)  # a latent mean far outside [-1, 1]
        pre, stored = enc.act(torch.zeros(64, 5), torch.zeros(64, 5))
    assert torch.equal(seen[-1], torch.tanh(stored["x"])) and seen[-1].abs().max() <= 1
    assert torch.equal(enc.env_action(pre), pre.clamp(-1, 1)) and pre.abs().max() > 1
    assert torch.equal(bounded_action(torch.tensor([2.0, -3.0, 0.5])), torch.tensor([1.0, -1.0, 0.5]))
    plain = make_encoder(_cfg(), 0, 5, 1, dec)
    assert not hasattr(plain, "env_action") and not plain.entropy_tanh_correction


def _teacher_dict(obs_dim, act_dim, bias):
    agent = GaussianPolicy(obs_dim, act_dim, [8], clip_eps=0.3, entropy_coef=0.0, entropy_tanh_correction=True)
    with torch.no_grad():
        agent.actor.net[-1].bias[:act_dim].fill_(bias)
    return {"agent": agent, "normalizer": RunningNormalizer(obs_dim, "welford"), "dir": "t", "env_steps": 7}


@pytest.mark.parametrize("semantics", ["bounded", "pre_tanh"])
def test_teacher_data_are_whole_episodes_and_bounded_targets_are_clipped(tmp_path, semantics):
    from gorl.algorithm.teacher import collect_teacher_data
    cfg = _cfg(action_semantics=semantics, teacher="ppo_teacher", teacher_episodes=3, collect_envs=2)
    run = Run(algo="gorl_fm", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={})
    obs, actions, episode, summary = collect_teacher_data(cfg, run, _teacher_dict(5, 1, 3.0))
    assert sorted(set(episode.tolist())) == sorted(episode[::1000].tolist())  # episode-major, 1000 rows each
    assert summary["episodes"] == 3 and obs.shape == (summary["rows"], 5) and actions.shape == (summary["rows"], 1)
    assert summary["rows"] == 3 * 1000  # whole episodes only (cartpole: 1000 steps, no termination)
    assert np.isfinite(summary["episode_return_mean"])
    if semantics == "bounded":
        assert np.abs(actions).max() <= 1.0
    else:
        assert np.abs(actions).max() > 1.0  # pre-actions (mean 3)


@pytest.mark.parametrize("collection", ["release", "episodes"])
def test_gorl_collection_targets_are_the_clipped_env_actions(tmp_path, collection):
    from gorl.algorithm.gorl import collect_decoder_data, collect_release_data
    counts = {"collect_episodes": 1} if collection == "release" else \
        {"collect_episodes": None, "collect_steps": 200, "decoder_split": "transition", "decoder_pairwise_weight": 0.0}
    cfg = _cfg(action_semantics="bounded", latent_bounded=True, collect_envs=2, decoder_collection=collection,
               **counts)
    run = Run(algo="gorl_fm", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={})

    class Wide(Decoder):
        def forward(self, obs_raw, z):
            return 4.0 * z

    enc = make_encoder(cfg, 0, 5, 1, Wide("fm", 5, 1, [8], identity=True))
    with torch.no_grad():
        enc.actor.net[-1].bias.fill_(2.0)
    if collection == "release":
        data = collect_release_data(cfg, run, 0, enc, RunningNormalizer(5, "welford"))
        actions = data["action"]
        assert np.abs(data["latent"]).max() <= 1.0  # the latent as the decoder received it: tanh(x)
    else:
        _, actions, _ = collect_decoder_data(cfg, run, 0, enc, RunningNormalizer(5, "welford"))
    assert np.abs(actions).max() <= 1.0 and (np.abs(actions) == 1.0).any()


# -- warm decoder fits ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["frozen", "cumulative", "fit"])
def test_warm_decoder_fit_statistics(mode):
    rng = np.random.default_rng(0)
    old_obs = rng.normal(0.0, 1.0, (400, 3)).astype(np.float32)
    new_obs = rng.normal(5.0, 2.0, (400, 3)).astype(np.float32)
    acts = rng.uniform(-1, 1, (400, 2)).astype(np.float32)
    fit = DecoderFitConfig(hidden=[16], steps=4, learning_rate=1e-3, batch_size=64, max_epochs=1, patience=1,
                           mc_samples=2, max_samples=10**6, val_fraction=0.1, max_val_batches=2)
    cpu = torch.device("cpu")
    first, _ = fit_decoder("fm", old_obs, acts, fit, 0, cpu)
    warm, _ = fit_decoder("fm", new_obs, acts, fit, 1, cpu, init=first, obs_stats=mode, prior_rows=360)
    if mode == "frozen":
        assert torch.equal(warm.obs_mean, first.obs_mean) and torch.equal(warm.obs_std, first.obs_std)
    elif mode == "cumulative":  # between the two data sets, weighted by their rows (360 each)
        assert torch.allclose(warm.obs_mean, (first.obs_mean + torch.as_tensor(new_obs).mean(0)) / 2, atol=0.3)
    else:
        assert warm.obs_mean.mean() > 4.0
    # a warm fit continues from the previous network: one epoch moves it little
    a, b = first.net.state_dict(), warm.net.state_dict()
    assert all((a[k] - b[k]).abs().max() < 0.1 for k in a)


# -- the teacher path in runs ----------------------------------------------------------------------
def test_gated_teacher_ends_the_run_with_a_recorded_reason(tmp_path, teacher):
    from analysis.collect import collect, problems
    out = tmp_path / "gorl_fm" / "cartpole-balance" / "seed0"
    r = cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--seed", "0",
                 "--quiet", "--out", out, *HUMANOID_SWITCHES, "--set", "teacher=ppo_teacher",
                 "--set", f"teacher_run={teacher}", "--set", "teacher_min_return=1e9", "--set", "stage_steps=[1, 1]")
    assert r.returncode == 0
    st = json.loads((out / "status.json").read_text())
    assert st["status"] == "gated" and "below teacher_min_return" in st["reason"]
    assert st["teacher_run"] == str(teacher.resolve()) and np.isfinite(st["teacher_dataset_return_mean"])
    assert (out / "stages/teacher/dataset_summary.json").exists() and not (out / "stages/stage0/decoder.pt").exists()
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")
    _, finals = collect(tmp_path, [("gorl_fm", "cartpole-balance", 0)])
    bad = problems(finals)
    assert list(bad["status"]) == ["gated"] and "teacher_min_return" in bad["reason"].iloc[0]
    again = cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--out", out, check=False)
    assert again.returncode == 2 and "gated" in again.stderr  # an ended run, not retried


def test_teacher_run_feeds_gorl_with_warm_start_handoff_and_anchor(tmp_path, teacher):
    out = tmp_path / "run"
    cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--seed", "0", "--quiet",
             "--out", out, *HUMANOID_SWITCHES, "--set", "teacher=ppo_teacher", "--set", f"teacher_run={teacher}",
             "--set", "teacher_warm_start=true", "--set", "encoder_handoff=final", "--set", "benchmark_start_steps=5000",
             "--set", "teacher_min_return=0", "--set", "decoder_init=warm",
             "--set", "later_stages.decoder_obs_stats=frozen", "--set", "stage_steps=[1, 1]")
    st = json.loads((out / "status.json").read_text())
    assert st["status"] == "completed" and st["teacher_run"] == str(teacher.resolve())
    assert st["teacher_env_steps"] == 3840 and st["start_env_step"] == 5000
    summary = json.loads((out / "stages/teacher/dataset_summary.json").read_text())
    assert summary["episode_return_mean"] == st["teacher_dataset_return_mean"] and summary["episodes"] == 2
    assert st["teacher_collection_env_steps"] == summary["env_steps"] == 2 * 1000
    rows = _evals(out)
    assert int(rows[0]["env_step"]) == 5000 and int(rows[-1]["env_step"]) == st["env_steps"] == 5000 + 3840
    assert json.loads((out / "stages/stage0/dataset_summary.json").read_text())["encoder_handoff"] == "final"
    assert not torch.load(out / "stages/stage0/decoder.pt", weights_only=False)["identity"]  # fitted on the teacher
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")


def test_resume_after_kill_with_a_teacher_gives_identical_evaluations(tmp_path, teacher):
    args = ["train", "gorl_diffusion", "cartpole-balance", "--preset", "smoke", "--steps", "7680", "--seed", "2",
            "--quiet", *HUMANOID_SWITCHES, "--set", "teacher=ppo_teacher", "--set", f"teacher_run={teacher}",
            "--set", "teacher_warm_start=true", "--set", "eval_deterministic=false", "--set", "stage_steps=[1, 1]"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    cli_here(*args, "--out", ref)  # the reference in this process; the killed run and its resume in fresh ones
    kill_when(args, killed, after_stage1_decoder, timeout=300)
    cli(*args, "--out", killed)
    assert _evals(killed) == _evals(ref) and "return_mean_deterministic" in _evals(ref)[0]
    assert json.loads((killed / "status.json").read_text())["teacher_dataset_return_mean"] == \
        json.loads((ref / "status.json").read_text())["teacher_dataset_return_mean"]


def test_an_interrupted_run_whose_teacher_was_retrained_is_not_resumed(tmp_path, teacher):
    """A GoRL run stopped after it collected its teacher's data set, then its teacher retrained
    (the pipeline's teacher rule rerun): resumed, it would go on from the old teacher's data under
    the new one's name. The CLI refuses in one line and writes nothing; the pipeline's job moves
    the run aside and trains it anew from the new teacher."""
    import shutil

    from gorl.job import train_job
    mine = tmp_path / "teacher"
    shutil.copytree(teacher, mine)
    out = tmp_path / "gorl_fm" / "cartpole-balance" / "seed0"
    args = ["gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "1920", "--seed", "0", *HUMANOID_SWITCHES,
            "--set", "teacher=ppo_teacher", "--set", f"teacher_run={mine}", "--set", "teacher_min_return=0",
            "--set", "stage_steps=[1]"]
    cli_here("train", *args, "--quiet", "--out", out)
    old_sha = rundir.file_sha256(mine / rundir.POLICY_FINAL)
    summary = json.loads((out / "stages/teacher/dataset_summary.json").read_text())
    assert summary["teacher_policy_sha256"] == old_sha == json.loads((out / "status.json").read_text())[
        "teacher_policy_sha256"]
    for name in (rundir.STATUS, rundir.PROVENANCE):  # as a stop before the end leaves the directory
        (out / name).unlink()
    assert rundir.teacher_change(out) is None  # the same teacher: the run resumes
    cli_here("train", "ppo_teacher", "cartpole-balance", "--preset", "smoke", "--steps", "1920", "--seed", "1",
             "--quiet", "--out", mine, "--force", "--set", "obs_norm_mode=welford")
    new_sha = rundir.file_sha256(mine / rundir.POLICY_FINAL)
    change = rundir.teacher_change(out)
    assert new_sha != old_sha and change and str(mine.resolve()) in change and new_sha[:12] in change

    def files():  # but the lock, which the refusal takes and releases
        return sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*") if p.name != rundir.LOCK)
    before = files()
    r = cli_here("train", *args, "--quiet", "--out", out, check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "interrupted run whose teacher is not the one it read" in r.stderr and "--force" in r.stderr
    assert files() == before

    log = tmp_path / "job.log"
    assert train_job(out / rundir.STATUS, log, 1, args) == (0, None)
    stale = list(out.parent.glob("seed0.stale-*"))
    assert len(stale) == 1 and (stale[0] / rundir.CHECKPOINT).exists()
    assert json.loads((stale[0] / "stages/teacher/dataset_summary.json").read_text())["teacher_policy_sha256"] == old_sha
    st = json.loads((out / rundir.STATUS).read_text())
    assert st["status"] == "completed" and st["teacher_policy_sha256"] == new_sha
    assert "its teacher" in log.read_text() and "resumed" not in log.read_text()


def test_a_named_teacher_must_be_a_completed_run_of_the_task(tmp_path, teacher):
    r = cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--quiet", "--out", tmp_path / "a",
                 "--set", "teacher=ppo_teacher", "--set", f"teacher_run={tmp_path / 'nothing'}", check=False)
    assert r.returncode == 2 and "teacher_run" in r.stderr and "not a completed run" in r.stderr
    r = cli_here("train", "gorl_fm", "pendulum-swingup", "--preset", "smoke", "--quiet", "--out", tmp_path / "b",
                 "--set", "teacher=ppo_teacher", "--set", f"teacher_run={teacher}", check=False)
    assert r.returncode == 2 and "cartpole-balance" in r.stderr
    r = cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--quiet", "--out", tmp_path / "c",
                 "--set", "teacher_warm_start=true", check=False)
    assert r.returncode == 2 and "teacher_warm_start needs a teacher" in r.stderr


class _Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a shared file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_teacher_is_read_from_its_final_policy_file_as_tensors(teacher):
    """What GoRL takes from a teacher run (actor, critic, statistics) is its final state: the
    tensors of policy_final.pt equal those of the final checkpoint."""
    from gorl.algorithm.teacher import load_teacher
    t = load_teacher(teacher, 5, 1, torch.device("cpu"), critic=True)
    ck = torch.load(teacher / rundir.CHECKPOINT, weights_only=False)  # the test's own run: trusted
    for got, want in ((t["agent"].state_dict(), ck["agent"]), (t["critic"], ck["critic"]),
                      (t["normalizer"].state_dict(), ck["normalizer"])):
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) if torch.is_tensor(got[k]) else got[k] == want[k] for k in got)


def test_a_teacher_run_holding_a_pickled_object_is_refused_in_one_line(tmp_path, teacher):
    """A teacher_run is a directory that may come from someone else: a pickle that would run
    code, planted in its policy file and checkpoint, is refused before training and never runs."""
    import shutil
    d = tmp_path / "shared_teacher"
    shutil.copytree(teacher, d)
    marker = tmp_path / "pwned"
    for name, trusted in ((rundir.POLICIES["final"], True), (rundir.CHECKPOINT, False)):
        st = torch.load(d / name, weights_only=trusted)
        st["agent"] = dict(st["agent"], gift=_Payload(marker))
        torch.save(st, d / name)
    out = tmp_path / "run"
    r = cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--quiet", "--out",
                 out, *HUMANOID_SWITCHES, "--set", "teacher=ppo_teacher", "--set", f"teacher_run={d}",
                 "--set", "teacher_warm_start=true", "--set", "stage_steps=[1, 1]", check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "policy_final.pt" in r.stderr and "refusing" in r.stderr, r.stderr
    assert not marker.exists()


# -- the humanoid runs themselves (minutes on a CPU) ----------------------------------------------
@pytest.mark.slow
def test_humanoid_smoke_runs_train_their_teacher_and_resume_after_kill(tmp_path):
    """`train ppo humanoid-stand` and `train gorl_fm humanoid-stand` (own teacher) at smoke scale
    pass check-run; a GoRL run killed after its teacher resumes to identical evaluations."""
    cli("train", "ppo", "humanoid-stand", "--preset", "smoke", "--quiet", "--out", tmp_path / "ppo")
    assert cli("check-run", tmp_path / "ppo").stdout.strip().endswith(": ok")
    args = ["train", "gorl_fm", "humanoid-stand", "--preset", "smoke", "--quiet", "--steps", "7680"]  # 4 x 1 iteration
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    cli(*args, "--out", ref)
    for d in (ref, ref / "teacher"):
        assert cli("check-run", d).stdout.strip().endswith(": ok")
    kill_when(args, killed, lambda d: (d / "metrics.csv").exists(), timeout=1200)
    cli(*args, "--out", killed)
    assert _evals(killed) == _evals(ref)
    st = json.loads((killed / "status.json").read_text())
    assert st["teacher_run"] == str((killed / rundir.TEACHER).resolve())


# -- the pipeline: one teacher per (task, seed) for both GoRL variants ------------------------------
def _snakemake(work: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    import yaml
    (work / "c.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, MUJOCO_GL="disable", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                          str(work), "--configfile", str(work / "c.yaml"), *args],
                         capture_output=True, text=True, timeout=900, env=env, cwd=work)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def _jobs(out: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts of a dry run's 'Job stats' table."""
    text = out.stdout + out.stderr
    table = text.split("Job stats:")[1].split("\n\n")[0]
    return {p[0]: int(p[1]) for p in (line.split() for line in table.splitlines()[3:]) if len(p) == 2}


def test_pipeline_trains_one_teacher_for_both_gorl_variants(tmp_path):
    cfg = {"name": "h", "algorithms": ["ppo", "gorl_fm", "gorl_diffusion"], "tasks": ["humanoid-stand", "humanoid-run"],
           "seeds": [0, 1], "steps": None, "preset": "smoke"}
    jobs = _jobs(_snakemake(tmp_path, cfg, "-n"))
    assert jobs["teacher"] == 4 and jobs["train"] == 12  # (task, seed) pairs; 3 algorithms x 4
    cfg["tasks"] = ["cheetah-run"]  # no teacher in the dm_control profile
    assert "teacher" not in _jobs(_snakemake(tmp_path, cfg, "-n"))


@pytest.mark.slow
def test_pipeline_teacher_is_trained_once_and_a_rerun_retrains_nothing(tmp_path):
    """A real tiny pipeline (the runs only): the teacher rule runs once, both GoRL runs read it,
    and a second invocation has nothing to do."""
    switches = {"teacher": "ppo_teacher", "action_semantics": "bounded", "latent_bounded": True,
                "obs_norm_mode": "welford", "teacher_episodes": 2, "collect_envs": 2, "collect_episodes": 2,
                "decoder_split": "transition", "decoder_pairwise_weight": 0.0}
    cfg = {"name": "h", "algorithms": ["gorl_fm", "gorl_diffusion"], "tasks": ["cartpole-balance"], "seeds": [0],
           "steps": 7680, "preset": "smoke",
           "algorithm_overrides": {a: {"set": switches} for a in ("gorl_fm", "gorl_diffusion")}}
    runs = tmp_path / "results/h/runs"
    targets = [f"results/h/runs/{a}/cartpole-balance/seed0/status.json" for a in ("gorl_fm", "gorl_diffusion")]
    _snakemake(tmp_path, cfg, "--cores", "2", *targets)
    teacher = tmp_path / "results/h/teachers/ppo_teacher/cartpole-balance/seed0"
    assert cli_here("check-run", teacher).stdout.strip().endswith(": ok")
    log = (tmp_path / "results/h/logs/teacher/cartpole-balance/seed0.log").read_text()
    assert log.count("gorl-bench train ppo_teacher") == 1
    for a in ("gorl_fm", "gorl_diffusion"):
        st = json.loads((runs / a / "cartpole-balance/seed0/status.json").read_text())
        assert st["status"] == "completed" and st["teacher_run"] == str(teacher.resolve())
        assert not (runs / a / "cartpole-balance/seed0" / rundir.TEACHER).exists()
    again = _snakemake(tmp_path, cfg, "-n", *targets)
    assert "Nothing to be done" in again.stdout + again.stderr


# -- figures and tables -----------------------------------------------------------------------------
def test_learning_curve_grid_has_the_papers_eight_panels(tmp_path):
    import pandas as pd

    from analysis import figures
    from gorl.envs import PAPER_TASKS
    assert figures.grid_columns(6) == 3 and figures.grid_columns(8) == 4
    rows = [{"algorithm": "ppo", "task": t, "seed": s, "env_step": x, "return": float(x + s), "stage": "0"}
            for t in PAPER_TASKS for s in (0, 1) for x in (0, 10, 20)]
    figures.learning_curves(pd.DataFrame(rows), {"ppo": {"color": "#000000", "label": "PPO", "family": "baseline"}},
                            tmp_path / "curves", tasks=list(PAPER_TASKS))
    assert (tmp_path / "curves.png").exists() and len(PAPER_TASKS) == 8


def test_paper_table_lists_the_humanoid_targets():
    from analysis import paper
    targets = paper.read_targets().set_index("task")["target_return"].to_dict()
    assert targets["humanoid-run"] == 300 and targets["humanoid-stand"] == 900  # configs/tasks/Humanoid*.toml
