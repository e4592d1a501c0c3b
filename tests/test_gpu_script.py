"""benchmarks/gpu_paper_scale.py is what a session with a GPU machine runs in its few minutes of
device time; these checks run its parts that build this suite's configs and trainers on the CPU,
so that a change of the presets or the trainers cannot break a part unseen until then (the
``gorl`` part still set v1's decoder epochs after the release presets had made the fit's length
``decoder_train_steps``, and failed with a ConfigError before it measured anything)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gorl import registry
from gorl.config import build_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_paper_scale.py"
PAPER_TASKS = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["tasks"]


def _load(path: Path):
    """A benchmarks/ script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script():
    return _load(SCRIPT)


def _report():
    return _load(ROOT / "benchmarks" / "gpu_report.py")


@pytest.mark.parametrize("task", ["playground:CheetahRun", *PAPER_TASKS])
def test_the_gorl_part_shortens_the_papers_own_decoder_fit(task):
    unit, full, short = _script().shortened_decoder_fit(task, "paper", steps=500, epochs=3)
    algo = registry.get("gorl_fm")
    preset = build_config(algo.config_cls, algo.presets_file, "paper", task, {}).for_stage(1)
    shortened = build_config(algo.config_cls, algo.presets_file, "paper", task, short).for_stage(1)
    assert shortened.decoder_fit_schedule == preset.decoder_fit_schedule
    if unit == "step":  # the release's schedule: 50,000 steps, timed over 500
        assert (full, shortened.decoder_train_steps) == (preset.decoder_train_steps, 500)
        assert shortened.decoder_max_epochs is None
    else:  # epochs (the humanoid profile)
        assert preset.decoder_fit_schedule == "epochs" and full == preset.decoder_max_epochs
        assert shortened.decoder_max_epochs == 3


def test_the_gorl_part_projects_a_shortened_collection_to_the_presets_episodes():
    """8 batches of 64 envs timed (the first compiles), 64 in the preset: the 56 not run at the
    later batches' mean, on top of everything measured."""
    from types import SimpleNamespace as NS
    project = _script().projected_collection
    cfg, whole = NS(collect_episodes=512, collect_envs=64), NS(collect_episodes=4096)
    got = project(30.0, [16.0] + [2.0] * 7, cfg, whole)
    assert got["collect_s_projected"] == 30.0 + 56 * 2.0 and got["collect_batch_s"] == 2.0
    assert got["collect_first_batch_s"] == 16.0 and got["collect_episodes_in_preset"] == 4096
    assert project(30.0, [30.0], NS(collect_episodes=4096, collect_envs=4096), whole)["collect_s_projected"] == 30.0
    assert project(30.0, None, cfg, whole) == {}  # a summary without batch times (v1's collection)


def test_a_fit_is_timed_from_its_validations():
    """The steady seconds per step come from the fit's history (``wall_s`` at each validation)
    after step 1, whose seconds (the compilation, where compiled) are reported apart."""
    rate = _script().fit_rate
    rows = [{"step": 0, "wall_s": 0.5}, {"step": 1, "wall_s": 30.5}, {"step": 100, "wall_s": 31.49},
            {"step": 200, "wall_s": 32.49}]
    per, first = rate(rows)
    assert per == pytest.approx(0.01) and first == pytest.approx(30.0)
    epochs = [{"epoch": 0, "steps": 50, "wall_s": 5.0}, {"epoch": 1, "steps": 100, "wall_s": 6.0}]
    assert rate(epochs) == (pytest.approx(0.02), 5.0)


def test_the_parts_that_build_our_trainers_run_in_their_tiny_form(tmp_path):
    env = dict(os.environ, MUJOCO_GL="disable", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--task", "cartpole-balance",
                           "--parts", "gorl", "checkpoint", "sharded", "fit", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    figures = json.loads((tmp_path / "gpu_paper_scale.json").read_text())
    assert sorted(figures) == ["checkpoint_cartpole-balance", "fit", "gorl", "sharded"], figures
    errors = {part: f["error"] for part, f in figures.items() if "error" in f}
    assert not errors, errors
    gorl = figures["gorl"]
    assert gorl["decoder_fit_unit"] == "step" and gorl["decoder_fit_units_run"] == gorl["decoder_fit_units_in_preset"]
    assert gorl["collect_env_steps"] > 0 and gorl["s_per_decoder_step"] > 0
    # smoke: the preset's one batch of 2 episodes collected whole, nothing projected
    assert gorl["collect_s_projected"] == gorl["collect_s"] and gorl["collect_first_batch_s"] > 0
    assert sorted(gorl["collection_by_envs"]) == ["2", "4"]  # the preset's 2 envs and --tiny's 4 compared
    assert all(len(f["batch_s"]) == 2 for f in gorl["collection_by_envs"].values())
    assert gorl["stage_iterations"] and gorl["encoder_iteration_s"] > 0 and gorl["encoder0_iteration_s"] > 0
    assert gorl["run_encoder_env_steps"] == sum(gorl["stage_iterations"]) * gorl["steps_per_iteration"]
    assert gorl["collect_setup_s"] > 0 and gorl["collect_assemble_s"] >= 0 and gorl["collect_programs_compiled"] >= 1
    assert 0 < gorl["run_s_steady_projected"] <= gorl["run_s_projected"]
    fit = figures["fit"]  # the smoke preset's 20 steps, eager and compiled
    assert fit["steps_timed"] == fit["steps_in_preset"] and fit["eager_ms_per_step"] > 0
    assert fit["compiled_ms_per_step"] > 0 and fit["speedup"] > 0 and float(fit["last_val_loss_rel_diff"]) < 1e-4
    assert fit["compiled_epoch_ms_per_step"] > 0 and fit["eager_epoch_ms_per_step"] > 0
    assert float(fit["eager_epoch_last_val_loss_rel_diff"]) == 0 and fit["epoch_capture_notes"] == []  # nothing captured on a CPU
    report = _report().report(figures)  # what the GPU session prints from the same JSON
    assert "`ppo_scan` in the JSON" in report and "`sharded`:" in report and "failed" not in report


def test_the_report_reads_each_target_from_the_figures_and_names_what_is_missing():
    ppo = {"task": "playground:CheetahRun", "env_steps_per_s": 400_000, "iteration_s": 2.0, "rollout_s": 1.6,
           "update_s": 0.4, "steps_per_iteration": 800_000, "paper_run_minutes": 7.5}
    gorl = {"task": "playground:CheetahRun", "run_minutes_projected": 12.0, "run_encoder_env_steps": 180_000_000,
            "encoder0_iteration_s": 2.0, "encoder_iteration_s": 3.0, "collect_s": 20.0,
            "decoder_full_fit_s_projected": 100.0}
    call = {"call": "h-1", "measured_at": "2026-12-04T11:25:00Z"}
    figures = {"ppo_scan": {**ppo, **call}, "brax": {"env_steps_per_s": 500_000, **call}, "gorl": gorl,
               "cuda_tests": {"exit_code": 1, "summary": "1 failed, 9 passed"}, "compile_CheetahRun": {"error": "boom"}}
    rows = {target.split(":")[0].split(" <")[0].split(" (")[0]: (measured, met) for target, measured, met in
            _report().targets(figures)}
    assert rows["PPO `paper` on playground"] == ("400,000 vs 500,000: **0.80x**", "milestone only")
    # a ratio of two calls' figures (two starts of the lent machine, maybe) says so; one whose
    # records predate the call id says that it cannot tell
    later = {"call": "h-2", "measured_at": "2026-12-04T12:05:00Z"}
    two = dict(figures, brax={"env_steps_per_s": 500_000, **later})
    assert _report().targets(two)[0][1] == ("400,000 vs 500,000: **0.80x** (measured in two calls, at "
                                            "2026-12-04T11:25:00Z and 2026-12-04T12:05:00Z: not one run's ratio)")
    assert _report().targets(dict(figures, brax={"env_steps_per_s": 500_000}))[0][1].endswith(
        "(whether in one call is not recorded)")
    # the compiled update's figure, what config/paper-gpu.yaml runs, is the one the targets read
    compiled = {**ppo, **call, "env_steps_per_s": 450_000, "compile_update": True}
    first = _report().targets(dict(figures, ppo_scan_compiled=compiled))[0]
    assert "`compile_update: true`" in first[0] and first[1] == "450,000 vs 500,000: **0.90x**"
    assert "- `ppo_scan`: " in _report().report(dict(figures, ppo_scan_compiled=compiled))
    # both cuda_graph records of the compiled update: the faster is read, and the row says which
    epoch = {**compiled, "env_steps_per_s": 520_000, "cuda_graph": "epoch"}
    first = _report().targets(dict(figures, ppo_scan_compiled=compiled, ppo_scan_compiled_epoch=epoch))[0]
    assert "`cuda_graph: epoch`" in first[0] and first[1] == "520,000 vs 500,000: **1.04x**"
    slower = dict(epoch, env_steps_per_s=300_000)
    first = _report().targets(dict(figures, ppo_scan_compiled=compiled, ppo_scan_compiled_epoch=slower))[0]
    assert "as config/paper-gpu.yaml runs it" in first[0] and first[1].startswith("450,000")
    failed = _report().targets(dict(figures, ppo_scan_compiled=compiled, ppo_scan_compiled_epoch={"error": "x"}))[0]
    assert failed[1].startswith("450,000")
    assert rows["PPO's update"][1] == "yes" and rows["a 180M-step PPO run"][1] == "no"
    # a run evaluates: where the part timed an evaluation, the run's minutes with them decide
    quick = {**ppo, **call, "paper_run_minutes": 4.5, "paper_run_minutes_with_evals": 5.6, "eval_s": 2.1,
             "num_evals": 31}
    row = [r for r in _report().targets(dict(figures, ppo_scan=quick)) if r[0].startswith("a 180M")][0]
    assert row[1:] == ("4.5 min (evaluations apart; 5.6 min with its 31 evaluations of 2.10 s)", "no")
    # GoRL: 12 min over 180M steps = 4 us per step; PPO: 2 s over 800k = 2.5 us: 1.6x
    assert rows["GoRL-FM's wall time per encoder env step"][0].startswith("**1.60x**")
    assert rows["GoRL-FM's wall time per encoder env step"][1] == "no"
    # the unrounded seconds, where the part recorded them, win over the minutes (rounded to 0.1)
    figures["gorl"] = {**gorl, "run_s_projected": 540.0}  # 3 us per step: 1.2x
    row = [r for r in _report().targets(figures) if r[0].startswith("GoRL-FM")][0]
    assert row[1].startswith("**1.20x**") and row[2] == "yes"
    # compilations apart (as PPO's own figure leaves its warm-up out), beside the figure that decides
    steady = [r for r in _report().targets(dict(figures, gorl={**figures["gorl"], "run_s_steady_projected": 450.0}))
              if r[0].startswith("GoRL-FM")][0]
    assert steady[1].startswith("**1.20x** (1.00x with the boundaries' compilations apart") and steady[2] == "yes"
    by_envs = {"64": {"batch_s": [20.0, 1.5], "boundary_s_projected": 96.0},
               "2048": {"batch_s": [25.0, 1.6], "boundary_s_projected": 3.2}}
    row = [r for r in _report().targets(dict(figures, gorl={**figures["gorl"], "collection_by_envs": by_envs}))
           if r[0].startswith("GoRL-FM")][0]
    assert row[1].endswith("collection with 64 envs per batch 96.0 s, 2,048 envs per batch 3.2 s")
    # the fit part's full fit, eager and compiled, beside the gorl part's own projection
    fit = {"device": "cuda", "eager_full_fit_s_projected": 220.0, "compiled_full_fit_s_projected": 70.0}
    row = [r for r in _report().targets(dict(figures, fit=fit)) if r[0].startswith("GoRL-FM")][0]
    assert row[1].endswith("the `fit` part's full fit on cuda: 220.0 s eager, 70.0 s compiled")
    row = [r for r in _report().targets(dict(figures, fit={**fit, "compiled_epoch_full_fit_s_projected": 20.0}))
           if r[0].startswith("GoRL-FM")][0]
    assert row[1].endswith("70.0 s compiled, 20.0 s compiled with a graph per validation interval")
    assert rows["checkpointing"] == ("not measured (no `checkpoint` in the JSON)", "-")
    assert rows["the CUDA tests"] == ("1 failed, 9 passed", "no")
    stopped = {"exit_code": None, "summary": "stopped after 270 s: 5 passed, 1 failed", "passed": 5, "failed": 1,
               "skipped": 0, "errors": 0, "failures": ["test_x[ppo]"]}
    row = [r for r in _report().targets(dict(figures, cuda_tests=stopped)) if r[0].startswith("the CUDA")][0]
    assert row[1:] == ("stopped after 270 s: 5 passed, 1 failed; failed: test_x[ppo]", "not finished")
    assert "- `compile_CheetahRun`: boom" in _report().report(figures)
    figures["brax"] = {"error": "XlaRuntimeError: out of memory"}
    first = _report().targets(figures)[0]
    assert first[1:] == ("`brax` failed: XlaRuntimeError: out of memory", "-")


def test_the_report_reads_the_parts_of_several_calls_as_one(tmp_path, capsys):
    """A GPU session may split its parts over two calls (each has an empty $OUT): the report reads
    their folders together; a part measured in both is taken from the later one."""
    first, second = tmp_path / "call1", tmp_path / "call2"
    for d, parts in ((first, {"ppo_scan": {"task": "playground:CheetahRun", "env_steps_per_s": 100, "iteration_s": 1.0,
                                           "rollout_s": 0.5, "update_s": 0.5, "steps_per_iteration": 100,
                                           "paper_run_minutes": 30.0},
                              "brax": {"error": "boom"}}),
                     (second, {"brax": {"env_steps_per_s": 400}})):
        d.mkdir()
        (d / "gpu_paper_scale.json").write_text(json.dumps(parts))
    assert _report().main([str(first), str(second / "gpu_paper_scale.json")]) == 0
    out = capsys.readouterr().out
    assert "100 vs 400: **0.25x**" in out and "boom" not in out
    assert _report().main([str(first), str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
