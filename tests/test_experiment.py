"""gorl.experiment: the pipeline's config as runs (`gorl-bench plan`), one run-identity rule,
the plug-in contract checked at registration."""
from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import cli, cli_here
from malformed_configs import MALFORMED
from gorl import experiment, registry
from gorl.config import build_config
from gorl.errors import ConfigError, ExperimentError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "config" / "config.yaml"


def _smoke(**changes) -> dict:
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg.update(changes)
    return cfg


# ------------------------------------------------------------------------------ plan
# paper: 8 tasks x 5 algorithms x 5 seeds, each at its preset's own budget: 179,896,320 for the
# baselines (humanoid PPO 206,438,400), 180M encoder steps for GoRL (HumanoidRun 120M after the anchor),
# plus the teachers GoRL reads on the two humanoids: 2 tasks x 5 seeds x 185,794,560 (ppo_teacher paper)
PAPER_TEACHERS = 2 * 5 * 185_794_560
PAPER_TOTAL = 5 * (6 * (3 * 179_896_320 + 2 * 180_000_000)
                   + (206_438_400 + 2 * 179_896_320 + 2 * 180_000_000)
                   + (206_438_400 + 2 * 179_896_320 + 2 * 120_000_000)) + PAPER_TEACHERS


@pytest.mark.parametrize("config, runs, teachers, total", [
    ("config/config.yaml", 20, "", "400,000"),
    ("config/paper.yaml", 200, f" + 10 teacher runs ({PAPER_TEACHERS:,} env steps)", f"{PAPER_TOTAL:,}"),
    ("config/humanoid-smoke.yaml", 3, " + 1 teacher run (20,000 env steps)", "80,000"),
])
def test_plan_prints_the_runs_and_total_env_steps(config, runs, teachers, total):
    """The total counts the teacher runs the pipeline trains for GoRL (one per task and seed that
    needs one, rows of their own) with the runs."""
    out = cli_here("plan", config).stdout
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["algorithm", "task", "seed", "preset", "env"]
    exp = experiment.load(ROOT / config)
    assert len(exp.runs) == runs
    assert sum(1 for ln in lines if ln.split()[:1] and ln.split()[0] in exp.algorithms) == runs
    assert sum(1 for ln in lines if ln.startswith("ppo_teacher ")) == len(exp.teacher_runs())
    assert f"{runs} runs" in out and f"seeds){teachers}, total {total} env steps" in out


def test_plan_json_and_measured_rates(tmp_path):
    """A completed run under --results gives the rate of its (algorithm, task, preset)."""
    d = tmp_path / "results" / "old" / "runs" / "ppo" / "cartpole-balance" / "seed0"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"algorithm": "ppo", "task": "cartpole-balance", "seed": 0,
                                                   "preset": "smoke"}))
    (d / "status.json").write_text(json.dumps({"status": "completed", "env_steps": 20000}))
    (d / "provenance.json").write_text(json.dumps({"wall_time_s": 40.0, "device": "cpu"}))
    plan = json.loads(cli_here("plan", SMOKE, "--json", "--results", tmp_path / "results").stdout)
    assert plan["total_env_steps"] == 400_000 and len(plan["runs"]) == 20
    assert plan["teacher_runs"] == [] and plan["teacher_env_steps"] == 0
    ppo = [r for r in plan["runs"] if r["algorithm"] == "ppo"]
    assert [r["seconds"] for r in ppo if r["task"] == "cartpole-balance"] == [40.0, 40.0]
    assert all(r["seconds"] == 40.0 for r in ppo)  # cheetah-run: the rate of ppo/smoke on another task
    assert all(r["seconds"] is None for r in plan["runs"] if r["algorithm"] != "ppo")
    assert plan["runs_without_estimate"] == 16


def _completed(results: Path, algo: str, task: str, seed: int, seconds: float, rollout: dict | None,
               kind: str = "runs") -> None:
    """A completed smoke run of 20,000 env steps in ``seconds`` under results/old/KIND/."""
    d = results / "old" / kind / algo / task.replace(":", "_") / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"algorithm": algo, "task": task, "seed": seed, "preset": "smoke"}))
    (d / "status.json").write_text(json.dumps({"status": "completed", "env_steps": 20000}))
    prov = {"wall_time_s": seconds, "device": "cpu"} | ({"rollout": rollout} if rollout else {})
    (d / "provenance.json").write_text(json.dumps(prov))


def test_estimate_uses_rates_of_the_rollout_path_the_run_will_take(tmp_path):
    """On a playground: task a run's speed depends on its rollout path: a rate measured with
    rollout=step does not estimate a run under auto (the scan), and rates of dm_control tasks do
    not estimate playground: ones; a run directory from before provenance recorded the path still
    counts."""
    res = tmp_path / "results"
    task = "playground:CartpoleBalance"
    _completed(res, "ppo", task, 0, 100.0, {"setting": "step", "used": "step"})
    _completed(res, "ppo", "cartpole-balance", 0, 50.0, {"setting": "auto", "used": "step"})
    exp = experiment.load(_smoke(algorithms=["ppo"], tasks=["cartpole-balance", task], seeds=[0]))
    run = exp.runs[1]
    assert run.hyperparameters["rollout"] == "auto"
    experiment.estimate(exp, res)
    assert run.seconds is None  # only a per-step rate on this task, a dm_control rate on another
    _completed(res, "ppo", task, 1, 10.0, {"setting": "auto", "used": "scan"})
    _completed(res, "ppo", task, 2, 30.0, {"setting": "scan", "used": "scan"})
    experiment.estimate(exp, res)
    assert (run.seconds, run.rate_source) == (15.0, "2 run(s) of this task, rollout scan")  # 2000, 667 steps/s
    assert exp.runs[0].seconds == 50.0  # the dm_control task: its own rate
    step = experiment.load(_smoke(algorithms=["ppo"], tasks=["cartpole-balance", task], seeds=[0],
                                  algorithm_overrides={"ppo": {"set": {"rollout": "step"}}}))
    experiment.estimate(step, res)
    assert step.runs[1].seconds == 100.0
    _completed(res, "ppo", task, 3, 70.0, None)  # no rollout recorded
    experiment.estimate(step, res)
    # the median rate of 200 and 286 steps/s: the old run may have taken either path
    assert step.runs[1].seconds == pytest.approx(20000 / ((20000 / 100 + 20000 / 70) / 2))
    # an agent the translator does not know runs per step under auto: its runs' record says so
    plugin = tmp_path / "plugin"
    _completed(plugin, "ppo", "playground:CheetahRun", 0, 40.0, {"setting": "auto", "used": "step"})
    assert experiment.planned_rollout(run, experiment.measured_rates(plugin)) == "step"
    assert experiment.planned_rollout(run, experiment.measured_rates(res)) == "scan"
    assert experiment.planned_rollout(exp.runs[0], []) == "step"  # dm_control


def test_plan_estimates_the_teacher_runs_from_the_pipelines_teacher_runs(tmp_path):
    """GoRL's teacher runs (results/NAME/teachers/) give the rate of the teacher rows, which count
    in the estimated total."""
    res, config = tmp_path / "results", ROOT / "config" / "humanoid-smoke.yaml"
    _completed(res, "ppo_teacher", "humanoid-stand", 0, 40.0, {"setting": "auto", "used": "step"}, kind="teachers")
    plan = json.loads(cli_here("plan", config, "--json", "--results", res).stdout)
    teacher, = plan["teacher_runs"]
    assert (teacher["seconds"], teacher["rate_source"]) == (40.0, "1 run(s) of this task")
    assert (plan["teacher_seconds_known"], plan["teachers_without_estimate"]) == (40.0, 0)
    assert (plan["run_seconds_known"], plan["runs_without_estimate"]) == (0, 3)
    out = cli_here("plan", config, "--results", res).stdout
    row, = [ln for ln in out.splitlines() if ln.startswith("ppo_teacher ")]
    assert "40s" in row.split()
    assert "estimated run time 40s (sum over runs and teacher runs" in out and "3 run(s) without" in out


def test_runs_carry_resources_and_styles():
    exp = experiment.load(ROOT / "config" / "paper-gpu.yaml", check_tasks=False)
    assert {r.gpu for r in exp.runs} == {1} and {r.device for r in exp.runs} == {"cuda"}
    assert exp.train_args("ppo") == ["--preset", "paper", "--set", "checkpoint_every=auto",
                                      "--set", "compile_update=true", "--set", "device=cuda"]  # steps: null
    smoke = experiment.load(SMOKE)
    assert {r.gpu for r in smoke.runs} == {0}
    assert smoke.styles == registry.styles(smoke.algorithms)
    assert smoke.gorl_algorithms() == ["gorl_fm", "gorl_diffusion"]


def test_teachers_execute_as_the_gorl_runs_that_read_them_but_learn_their_own_way():
    """A pipeline-trained teacher takes how its GoRL runs execute (device, compiled update,
    checkpoint cadence: config/paper-gpu.yaml's cuda, compile_update and checkpoint_every auto),
    in its command, its plan row and its GPU request; none of what the GoRL runs learn."""
    exp = experiment.load(ROOT / "config" / "paper-gpu.yaml", check_tasks=False)
    assert exp.teacher_args() == ["--preset", "paper", "--set", "checkpoint_every=auto",
                                  "--set", "compile_update=true", "--set", "device=cuda"]
    teacher = exp.teacher_runs()[0]
    assert (teacher.device, teacher.gpu) == ("cuda", 1)
    assert (teacher.hyperparameters["compile_update"], teacher.hyperparameters["checkpoint_every"]) == (True, "auto")
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    cfg["algorithm_overrides"] = {"gorl_fm": {"set": {"clip_eps": 0.1, "compile_update": True}},
                                  "gorl_diffusion": {"set": {"checkpoint_every": 5, "compile_update": False}}}
    exp = experiment.load(cfg, check_tasks=False)
    assert exp.teacher_overrides() == {"compile_update": True, "checkpoint_every": 5}  # the first GoRL's wins
    assert exp.teacher_device() is None and {r.gpu for r in exp.teacher_runs()} == {0}
    assert exp.teacher_runs()[0].hyperparameters["clip_eps"] != 0.1


def test_runs_per_gpu_shares_each_gpu_and_splits_jax_memory(tmp_path):
    """runs_per_gpu: 4 on the GPU config: every run still asks for gpu=1 (Slurm: a whole GPU), the
    plan says how the GPU runs share GPUs, and each job's JAX gets a quarter of its default 75%."""
    cfg = yaml.safe_load((ROOT / "config" / "paper-gpu.yaml").read_text())
    cfg["runs_per_gpu"] = 4
    (tmp_path / "gpu4.yaml").write_text(yaml.safe_dump(cfg))
    exp = experiment.load(dict(cfg), check_tasks=False)
    assert exp.runs_per_gpu == 4 and {r.gpu for r in exp.runs} == {1}
    env = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.187", "XLA_CLIENT_MEM_FRACTION": "0.187",
           "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}
    assert exp.gpu_env() == env
    assert exp.train_args("ppo") == ["--preset", "paper", "--set", "checkpoint_every=auto",
                                      "--set", "compile_update=true", "--set", "device=cuda"]  # no run changes
    plan = json.loads(cli_here("plan", tmp_path / "gpu4.yaml", "--json").stdout)
    # 200 runs and the 10 humanoid teacher runs they read, all on cuda
    assert (plan["gpu_runs"], plan["runs_per_gpu"], plan["gpu_env"]) == (200 + 10, 4, env)
    out = cli_here("plan", tmp_path / "gpu4.yaml").stdout
    assert "runs_per_gpu 4: up to 4 GPU runs share each GPU" in out and "50 GPUs" in out
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION=0.187" in out
    # one GPU per run (the default): JAX keeps its own policy, the plan says nothing more
    assert experiment.load(ROOT / "config" / "paper-gpu.yaml", check_tasks=False).gpu_env() == {}
    assert [experiment.gpu_share_env(n)["XLA_PYTHON_CLIENT_MEM_FRACTION"] for n in (2, 3, 8)] == \
        ["0.375", "0.250", "0.093"]


@pytest.mark.parametrize("value, message", [
    (0, "runs_per_gpu: 0 is less than the minimum of 1"),
    ("two", "runs_per_gpu: 'two' is not of type 'integer'"),
    (4, "runs_per_gpu: 4 shares GPUs between GPU runs, but no run's resolved device is cuda"),
])
def test_runs_per_gpu_bad_values_are_named(value, message):
    with pytest.raises(ExperimentError) as e:
        experiment.load(_smoke(runs_per_gpu=value))  # the smoke runs are on the CPU
    assert message in str(e.value)


def test_trust_checkpoints_reaches_the_training_jobs_outside_their_command():
    """trust_checkpoints (default false) becomes --trust-checkpoint in each training job through the
    job's environment; the jobs' arguments (their rerun trigger) are the same either way."""
    exp = experiment.load(_smoke())
    assert exp.trust_checkpoints is False and exp.config["trust_checkpoints"] is False
    assert experiment.train_job_flags(exp.train_job_env()) == []
    trusting = experiment.load(_smoke(trust_checkpoints="true"))  # as `snakemake --config` may pass it
    assert trusting.trust_checkpoints is True
    assert experiment.train_job_flags(trusting.train_job_env()) == ["--trust-checkpoint"]
    assert [trusting.train_args(a) for a in trusting.algorithms] == [exp.train_args(a) for a in exp.algorithms]
    assert experiment.train_job_flags({}) == []  # a job started outside the pipeline trusts nothing


@pytest.mark.parametrize("value", [1, "yes", None])
def test_trust_checkpoints_bad_values_are_named(value):
    with pytest.raises(ExperimentError) as e:
        experiment.load(_smoke(trust_checkpoints=value))
    assert "trust_checkpoints: " in str(e.value) and "is not of type 'boolean'" in str(e.value), str(e.value)


# ------------------------------------------------------------------- validation order
def test_an_unknown_task_is_named_before_the_settings_that_refer_to_it():
    with pytest.raises(ExperimentError) as e:
        experiment.load(_smoke(tasks=["nosuch-task"]))
    msg = str(e.value)
    assert msg.startswith("config: tasks[0]: unknown task 'nosuch-task'"), msg
    out = cli("plan", "/dev/stdin", check=False)  # unreadable as YAML mapping: one line, exit 2
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("change, culprit", MALFORMED)
def test_plan_refuses_what_the_pipeline_refuses(change, culprit):
    with pytest.raises(ExperimentError) as e:
        experiment.load(_smoke(**change))
    msg = str(e.value)
    assert msg.startswith("config: ") and culprit in msg, msg


def test_plan_names_a_bad_config_in_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_smoke(algorithm_overrides={"ppo": {"set": {"clip_epz": 0.1}}})))
    out = cli_here("plan", path, check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line == ("gorl-bench plan: error: config: algorithm_overrides.ppo.set: unknown hyperparameter "
                    "'clip_epz' (did you mean 'clip_eps'?) for ppo"), line


def test_a_pipeline_config_sets_what_train_sets():
    """``algorithm_overrides.ALGO.set`` takes what ``train --set`` takes: one stage's keys (README:
    ``--set stage1.learning_rate=3e-4``; they were refused as unknown hyperparameters), and YAML's
    null and lists (refused by the schema; ``--set decoder_target_clip=null`` is a release switch).
    A stage that does not exist, a whole-run key per stage and a malformed key are still named."""
    exp = experiment.load(_smoke(algorithms=["gorl_fm"], algorithm_overrides={"gorl_fm": {"set": {
        "stage1.learning_rate": 1e-4, "later_stages.clip_eps": 0.1}}}))
    assert exp.train_args("gorl_fm")[-4:] == ["--set", "later_stages.clip_eps=0.1", "--set", "stage1.learning_rate=0.0001"]
    stages = exp.runs[0].hyperparameters["stage_overrides"]
    assert stages["stage1"]["learning_rate"] == 1e-4 and stages["later_stages"]["clip_eps"] == 0.1
    exp = experiment.load(_smoke(algorithms=["gorl_fm"], algorithm_overrides={"gorl_fm": {"set": {
        "decoder_target_clip": None, "actor_hidden": [64, 64], "stage_steps": [1, 1]}}}))  # YAML's null and lists
    assert exp.train_args("gorl_fm")[-6:] == ["--set", "actor_hidden=[64, 64]", "--set", "decoder_target_clip=null",
                                              "--set", "stage_steps=[1, 1]"]
    hp = exp.runs[0].hyperparameters
    assert (hp["actor_hidden"], hp["decoder_target_clip"], hp["stage_steps"]) == ([64, 64], None, [1, 1])
    for key, culprit in [("stage9.learning_rate", "stage 9 does not exist"),
                         ("stage1.num_envs", "num_envs holds for the whole run"),
                         ("stages.clip_eps", "is not a key"),
                         ("stage1.clip_epz", "unknown hyperparameter 'stage1.clip_epz' (did you mean 'clip_eps'?)")]:
        with pytest.raises(ExperimentError) as e:
            experiment.load(_smoke(algorithms=["gorl_fm"], algorithm_overrides={"gorl_fm": {"set": {key: 2}}}))
        assert str(e.value).startswith("config: algorithm_overrides.gorl_fm.set: ") and culprit in str(e.value), e.value


@pytest.mark.parametrize("key, hint", [
    ("lr", "(another library's name; here it is 'learning_rate')"),
    ("ent_coef", "(another library's name; here it is 'entropy_coef')"),
    ("vf_coef", "here it is 'value_loss_coef': it weights the mean squared value error itself"),
    ("seed", "(not a key: the seed is train's --seed, a pipeline config's seeds:)"),
    ("n_steps", "batch_size x num_minibatches x unroll_length env steps"),
])
def test_keys_of_other_ppo_libraries_name_the_key_here(key, hint):
    """CleanRL's, SB3's and Brax's names for a setting are refused as before, naming this suite's key
    for the same role (or why there is none), in the pipeline's check and in train's --set."""
    with pytest.raises(ExperimentError, match=re.escape(hint)):
        experiment.load(_smoke(algorithm_overrides={"ppo": {"set": {key: 1}}}))
    spec = registry.get("ppo")
    with pytest.raises(ConfigError, match=re.escape(f"unknown override key {key!r} ") + ".*" + re.escape(hint)):
        build_config(spec.config_cls, spec.presets_file, "smoke", "cartpole-balance", {key: 1})


@pytest.mark.parametrize("algo, key, hint", [
    ("gorl_fm", "ppo.clip_epsilon", "unknown key 'ppo.clip_epsilon' (the release's [ppo] clip_epsilon is 'clip_eps' here)"),
    ("gorl_fm", "profile_overrides.dm_control.ppo.later_stages.z_regularization",
     "(the release's [ppo.later_stages] z_regularization is 'later_stages.latent_reg_coef' here)"),
    ("gorl_fm", "z_regularization", "(the release's [ppo] z_regularization is 'latent_reg_coef' here)"),
    ("fpo", "decoder.samples_per_action", "(the release's [decoder] samples_per_action is 'num_mc_samples' here)"),
    ("dppo", "decoder.samples_per_action", "is not a setting here: DPPO's loss uses the stored denoising chain"),
    ("ppo", "evaluation.deterministic", "(the release's [evaluation] deterministic is 'eval_deterministic' here)"),
    ("ppo", "decoder.diffusion_steps", "(the release's [decoder] diffusion_steps: this algorithm has no such setting)"),
    ("ppo", "decoder.samples_per_action", "(the release's [decoder] samples_per_action: this algorithm has no such"),
    ("ppo", "ppo.learning_rate", "(the release's [ppo] learning_rate is 'learning_rate' here)"),
    ("ppo", "ppo.stage0.clip_epsilon", "is 'clip_eps' here) (this algorithm has no stages: a key holds for the whole run)"),
    ("gorl_diffusion", "ppo.later_stages.learning_rate", "is 'later_stages.learning_rate' here)"),
    ("fpo", "evaluation.deterministic", "is 'eval_mode' here: its true is 'stochastic' (x_1 stays random"),
])
def test_keys_of_the_release_name_the_key_here(algo, key, hint):
    """The authors' release names its settings `table.key` in its TOML files; a researcher with
    them open types those names. Refused as before, each names this suite's key for the same role
    for that algorithm (or why there is none), in the pipeline's check and in train's --set."""
    with pytest.raises(ExperimentError, match=re.escape(hint)):
        experiment.load(_smoke(algorithms=[algo], algorithm_overrides={algo: {"set": {key: 1}}}))
    spec = registry.get(algo)
    with pytest.raises(ConfigError, match=re.escape(hint)):
        build_config(spec.config_cls, spec.presets_file, "smoke", "cartpole-balance", {key: 1})


# ------------------------------------------------------------------------ run identity
def test_run_differences_is_the_one_rule():
    old = experiment.run_identity("ppo", "cheetah-run", 0, "smoke", [], {}, {"lr": 1e-3, "device": "cpu"})
    assert experiment.run_differences({**old, "device": "cuda:0"}, old) == []  # where it ran may change
    cadence = experiment.run_identity("ppo", "cheetah-run", 0, "smoke", [], {"checkpoint_every": "auto"},
                                      {"lr": 1e-3, "device": "cpu", "checkpoint_every": "auto"})
    assert experiment.run_differences(old, cadence) == []  # so do the checkpoints: the same run resumes
    new = experiment.run_identity("ppo", "cheetah-run", 0, "smoke", [], {"lr": 3e-4},
                                  {"lr": 3e-4, "device": "cpu"})
    assert experiment.run_differences(old, new) == ["hyperparameters.lr: 0.001 -> 0.0003",
                                                    "overrides.lr: None -> 0.0003"]
    # a key added since the old run was made: its earlier behaviour's value is the same run, others are not
    added = experiment.run_identity("ppo", "cheetah-run", 0, "smoke", [], {},
                                    {"lr": 1e-3, "device": "cpu", "compile_update": False})
    assert experiment.run_differences(old, added) == []
    added["hyperparameters"]["compile_update"] = True
    assert experiment.run_differences(old, added) == ["hyperparameters.compile_update: False -> True"]
    same = experiment.requested_identity("ppo", "cartpole-balance", 0, "smoke", 3840, [], [])
    assert same["hyperparameters"]["total_steps"] == 3840 and same["overrides"] == {}


# ------------------------------------------------------------------ plug-in contract
A2C = '''
from dataclasses import dataclass
from pathlib import Path
from gorl.registry import Algorithm, register

PRESETS = Path(__file__).with_name("{name}.yaml")
PRESETS.write_text("smoke:\\n  total_steps: 1000\\n")


@dataclass
class Config:
    total_steps: int = 1000
    {field}


def train(cfg, run):
    raise RuntimeError("not meant to train")


register(Algorithm(name="{name}", config_cls=Config, presets_file=PRESETS, train=train))
'''


def _plugin(tmp_path: Path, name: str, field: str) -> dict:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(A2C.format(name=name, field=field)))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_a_plugin_config_without_device_fails_at_registration(tmp_path):
    env = _plugin(tmp_path, "nodevice", "learning_rate: float = 1e-3")
    out = cli("train", "nodevice", "cartpole-balance", "--import", "nodevice", "--out", tmp_path / "run",
              check=False, env=env)
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "algorithm 'nodevice' (module nodevice)" in line and "no field 'device'" in line, line
    assert not (tmp_path / "run").exists()


def test_a_plugin_preset_that_does_not_fit_its_class_fails_at_registration(tmp_path):
    env = _plugin(tmp_path, "badpreset", 'device: str = "cpu"')
    (tmp_path / "badpreset.py").write_text((tmp_path / "badpreset.py").read_text().replace(
        '"smoke:\\n  total_steps: 1000\\n"', '"smoke:\\n  base: \\"ppo:smoke\\"\\n"'))
    out = cli("list", "--import", "badpreset", check=False, env=env)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "algorithm 'badpreset' (module badpreset): preset 'smoke' does not fit Config" in line, line
    assert "unknown preset key" in line


def test_unknown_algorithm_says_how_plugins_are_found():
    out = cli("train", "a2c", "cartpole-balance", "--out", "/nonexistent/x", check=False)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    for words in ("unknown algorithm 'a2c'", "plug-ins found: none", "gorl_bench.algorithms", "--import",
                  "PYTHONPATH"):
        assert words in line, line


def test_built_in_algorithms_honour_the_contract():
    for algo in registry.algorithms().values():
        registry.check_algorithm(algo)
        experiment.check_presets(algo)
