"""End to end: the real Snakemake workflow on .test/config/e2e.yaml.

One pipeline run (module-scoped fixture) trains every registered algorithm on two tasks
with two seeds at a tiny budget into a temporary working directory (``--directory``), then
the tests read what it made: the tidy table, the final scores, every figure, the report.
The run is made the hard way: killed as a whole (kill -9 of snakemake and its jobs) during
training, unlocked, and resumed by the plain command; and the experiment also names
``crasher`` (tests/crashing_algorithm.py, through ``imports:``), whose training raises: the
analysis covers the other runs, then snakemake exits 1 naming the failed runs.
A malformed config must be rejected, naming the key, before any job starts.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from malformed_configs import MALFORMED

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
E2E = ROOT / ".test" / "config" / "e2e.yaml"
CRASHER = "crasher"
FIGURES = ["learning_curves", "aggregate_metrics", "probability_of_improvement",
           "performance_profiles", "sample_efficiency", "action_distribution"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _algorithms() -> list[str]:
    from gorl import registry
    # every algorithm an experiment compares (ppo_teacher is GoRL's input, trained by its own rule)
    return [n for n, a in registry.algorithms().items() if a.family != "teacher"]


def _env() -> dict:
    return dict(os.environ, MUJOCO_GL="disable",
                PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))


def _snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(_snakemake_cmd(workdir, *args), capture_output=True, text=True, timeout=timeout,
                          env=_env(), cwd=workdir)


def _config(workdir: Path, filename: str = "e2e.yaml", crasher: bool = False, **changes) -> Path:
    cfg = yaml.safe_load(E2E.read_text())
    cfg["algorithms"] = _algorithms()
    if crasher:
        cfg["algorithms"].append(CRASHER)
        cfg["imports"] = ["crashing_algorithm"]
    cfg.update(changes)
    path = workdir / filename
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _kill_during_training(work: Path, cfg_path: Path, timeout: float = 600) -> Path:
    """Start the workflow, and kill -9 snakemake and all its jobs (its process group) once some
    run has checkpointed and none has ended; returns the run directory that had checkpointed."""
    import signal

    proc = subprocess.Popen(_snakemake_cmd(work, "--cores", "2", "--configfile", str(cfg_path)), env=_env(),
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            started = [p.parent for p in (work / "results").glob("*/runs/*/*/seed*/checkpoint.pt")
                       if not (p.parent / "status.json").exists()]
            if started:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return started[0]
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    pytest.fail("no run checkpointed before the workflow ended or timed out")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Run the e2e workflow (with the crashing algorithm), killed during training and resumed
    by the plain command; yields (workdir, results dir, config dict, seconds, last output)."""
    work = tmp_path_factory.mktemp("e2e")
    cfg_path = _config(work, crasher=True)
    t0 = time.perf_counter()
    killed = _kill_during_training(work, cfg_path)
    assert not (killed / "status.json").exists()
    unlock = snakemake(work, "--unlock", "--configfile", str(cfg_path))  # README: after a kill -9
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    out = snakemake(work, "--cores", "2", "--configfile", str(cfg_path))  # the plain command resumes
    seconds = time.perf_counter() - t0
    if out.returncode != 1 or not (work / "results" / "e2e" / "figures" / "learning_curves.png").exists():
        pytest.fail(f"e2e workflow: expected exit 1 (the crasher) after the analysis, got {out.returncode}:\n"
                    f"{out.stderr[-6000:]}")
    assert f"workflow specific profile {ROOT / 'profiles' / 'default'}" in out.stdout + out.stderr
    cfg = yaml.safe_load(cfg_path.read_text())
    algo, task, seed = killed.parts[-3], killed.parts[-2], killed.name.removeprefix("seed")
    log = work / "results" / cfg["name"] / "logs" / "train" / algo / task / f"seed{seed}.log"
    assert "resumed from" in log.read_text(), log.read_text()[-2000:]
    print(f"\ne2e workflow: {seconds:.0f} s for {len(cfg['algorithms'])} algorithms")
    return work, work / "results" / cfg["name"], cfg, seconds, out


def _trained(cfg: dict) -> list[str]:
    return [a for a in cfg["algorithms"] if a != CRASHER]


def test_a_crashed_run_ends_the_workflow_non_zero_after_the_analysis(pipeline):
    _, res, cfg, _, out = pipeline
    n = len(cfg["tasks"]) * len(cfg["seeds"])
    summary = out.stderr[out.stderr.index(f"{n} of {len(cfg['algorithms']) * n} runs"):]
    assert summary.startswith(f"{n} of {len(cfg['algorithms']) * n} runs of experiment 'e2e' FAILED"), summary
    assert f"{CRASHER} {cfg['tasks'][0]} seed{cfg['seeds'][0]}: exit code 1" in summary
    assert "deliberate crash in the algorithm's own code" in summary
    assert len(summary.splitlines()) <= 25
    problems = pd.read_csv(res / "tables" / "problem_runs.csv")
    assert set(problems["algorithm"]) == {CRASHER} and len(problems) == n
    assert (problems["status"] == "failed").all()


def test_tidy_table(pipeline):
    _, res, cfg, *_ = pipeline
    tidy = pd.read_parquet(res / "tables" / "evals_tidy.parquet")
    csv = pd.read_csv(res / "tables" / "evals_tidy.csv")
    assert list(tidy.columns) == ["algorithm", "task", "seed", "env_step", "return", "return_std",
                                  "normalized_return", "stage", "status", "wall_time"]
    assert len(csv) == len(tidy)
    np.testing.assert_allclose(csv["return"], tidy["return"])
    # every (algorithm, task, seed) of the config that trained is there, nothing else
    keys = set(tidy[["algorithm", "task", "seed"]].itertuples(index=False, name=None))
    assert keys == {(a, t, s) for a in _trained(cfg) for t in cfg["tasks"] for s in cfg["seeds"]}
    per_run = tidy.groupby(["algorithm", "task", "seed"]).size()
    assert (per_run >= 2).all(), per_run[per_run < 2]
    assert len(tidy) == per_run.sum()
    # value ranges
    finite = tidy[np.isfinite(tidy["return"])]
    assert len(finite) >= 0.9 * len(tidy)
    assert finite["return"].between(0, 1000).all()
    np.testing.assert_allclose(finite["normalized_return"], finite["return"] / 1000.0)
    assert tidy["env_step"].between(0, cfg["steps"]).all()
    assert set(tidy["status"]) <= {"completed", "diverged"}
    # evaluations of each run in training order
    for _, g in tidy.groupby(["algorithm", "task", "seed"]):
        assert g["env_step"].is_monotonic_increasing


def test_final_scores_and_status(pipeline):
    _, res, cfg, *_ = pipeline
    finals = pd.read_csv(res / "tables" / "final_scores.csv")
    n = len(cfg["algorithms"]) * len(cfg["tasks"]) * len(cfg["seeds"])
    assert len(finals) == n
    crashed = finals[finals["algorithm"] == CRASHER]
    assert (crashed["status"] == "failed").all() and not crashed["included"].any()
    finals = finals[finals["algorithm"] != CRASHER]
    bad = finals[~finals["status"].isin(["completed", "diverged"])]
    assert bad.empty, bad[["algorithm", "task", "seed", "status", "reason"]].to_string()
    assert finals["included"].all()
    # final score = the last evaluation of the run (spec 1.4), straight from evals.csv
    for r in finals.itertuples():
        ev = pd.read_csv(res / "runs" / r.algorithm / r.task / f"seed{r.seed}" / "evals.csv")
        ev = ev[np.isfinite(ev["return_mean"])]
        assert r.final_return == pytest.approx(ev["return_mean"].iloc[-1])
        assert r.final_normalized == pytest.approx(r.final_return / 1000.0)
        status = json.loads((res / "runs" / r.algorithm / r.task / f"seed{r.seed}" / "status.json").read_text())
        assert status["status"] == r.status


def test_statistics_tables(pipeline):
    _, res, cfg, *_ = pipeline
    agg = pd.read_csv(res / "tables" / "aggregate_metrics.csv")
    assert set(agg["algorithm"]) == set(_trained(cfg))
    assert set(agg["metric"]) == {"IQM", "Median", "Mean", "Optimality Gap"}
    assert (agg["lower"] <= agg["estimate"] + 1e-12).all() and (agg["estimate"] <= agg["upper"] + 1e-12).all()
    assert (agg["reps"] == cfg["analysis"]["bootstrap_reps"]).all()
    poi = pd.read_csv(res / "tables" / "probability_of_improvement.csv")
    from gorl import registry
    fam = {a: registry.get(a).family for a in _trained(cfg)}
    pairs = {(x, y) for x in _trained(cfg) for y in _trained(cfg) if fam[x] == "gorl" and fam[y] != "gorl"}
    assert set(zip(poi["algorithm_x"], poi["algorithm_y"])) == pairs
    assert poi["probability"].between(0, 1).all()
    se = pd.read_csv(res / "tables" / "sample_efficiency.csv")
    assert se.groupby("algorithm").size().eq(cfg["analysis"]["curve_points"]).all()
    paper = pd.read_csv(res / "tables" / "paper_comparison.csv")
    assert set(zip(paper["algorithm"], paper["task"])) == {(a, t) for a in cfg["algorithms"] for t in cfg["tasks"]}


def test_figures_are_images(pipeline):
    from PIL import Image

    _, res, *_ = pipeline
    for name in FIGURES:
        png = res / "figures" / f"{name}.png"
        pdf = res / "figures" / f"{name}.pdf"
        assert png.stat().st_size > 5_000, png
        assert png.read_bytes()[:8] == PNG_MAGIC, png
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            w, h = im.size
            assert w >= 400 and h >= 200, (png, im.size)
            assert len(set(np.asarray(im.convert("L")).ravel()[::97])) > 5, f"{png} looks blank"
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf


def test_training_jobs_pass_threads(pipeline):
    _, res, cfg, *_ = pipeline
    a, t, s = cfg["algorithms"][0], cfg["tasks"][0], cfg["seeds"][0]
    log = (res / "logs" / "train" / a / t / f"seed{s}.log").read_text()
    assert "--threads 1" in log


def test_job_logs_show_each_evaluation_and_gorl_stage_event(pipeline):
    """Jobs run the CLI with --quiet; their logs still get one line per evaluation (issue 21)."""
    _, res, cfg, *_ = pipeline
    t, s = cfg["tasks"][0], cfg["seeds"][0]
    for a in _trained(cfg):  # the crasher has no evaluations
        log = (res / "logs" / "train" / a / t / f"seed{s}.log").read_text()
        evals = (res / "runs" / a / t / f"seed{s}" / "evals.csv").read_text().count("\n") - 1
        lines = sum(ln.startswith("eval  env step") for ln in log.splitlines())
        # a job resumed after the fixture's kill -9 logs the attempt that finished: its evaluations only
        assert lines == evals or ("resumed from" in log and 0 < lines < evals), log
        if a.startswith("gorl"):
            assert "stage 0: collected" in log and "stage 0: decoder 1 fitted" in log, log


def test_snakemake_prints_each_log_line_once(pipeline):
    """Loading the experiment imports dm_control, whose absl logging gave the root logger a handler
    that printed every Snakemake log line a second time ("INFO:snakemake.logging: ...")."""
    *_, out = pipeline
    assert "INFO:snakemake.logging" not in out.stdout + out.stderr


def test_report_builds(pipeline):
    work, *_ = pipeline
    out = snakemake(work, "--configfile", str(work / "e2e.yaml"), "--report", "report.html")
    assert out.returncode == 0, out.stderr[-4000:]
    html = (work / "report.html").read_text(errors="replace")
    assert len(html) > 50_000
    for name in FIGURES:
        assert f"{name}.png" in html


def test_incremental(pipeline):
    """Nothing to redo (a failed run stays recorded); one more seed trains only the new runs."""
    work, _, cfg, *_ = pipeline
    out = snakemake(work, "-n", "--configfile", str(work / "e2e.yaml"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Nothing to be done" in out.stdout + out.stderr
    cfg_path = _config(work, "e2e_more_seeds.yaml", crasher=True, seeds=[*cfg["seeds"], max(cfg["seeds"]) + 1])
    out = snakemake(work, "-n", "--configfile", str(cfg_path))
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    new = max(cfg["seeds"]) + 1
    trains = [ln.split("output:", 1)[1].strip() for ln in text.splitlines()
              if ln.strip().startswith("output:") and ln.strip().endswith("/status.json")]
    assert len(trains) == len(cfg["algorithms"]) * len(cfg["tasks"])
    assert all(f"/seed{new}/status.json" in p for p in trains), trains


def test_tables_are_a_function_of_the_config(pipeline, tmp_path):
    """Removing a seed from the experiment removes it from every table (the run stays on disk,
    listed as ignored in the problem-runs table); nothing retrains."""
    import shutil

    work, res, cfg, *_ = pipeline
    copy = tmp_path / "work"
    shutil.copytree(work, copy, symlinks=True)
    keep, drop = cfg["seeds"][0], cfg["seeds"][1]
    out = snakemake(copy, "--cores", "2", "--configfile", str(copy / "e2e.yaml"), "--config", f"seeds=[{keep}]")
    assert out.returncode == 1, out.stderr[-4000:]  # the crasher's runs are still failed
    assert f"{len(cfg['tasks'])} of " in out.stderr
    assert "rule train" not in out.stdout + out.stderr  # analysis only
    tables = copy / "results" / cfg["name"] / "tables"
    tidy = pd.read_parquet(tables / "evals_tidy.parquet")
    assert set(tidy["seed"]) == {keep}
    assert set(pd.read_csv(tables / "evals_tidy.csv")["seed"]) == {keep}
    finals = pd.read_csv(tables / "final_scores.csv")
    assert set(finals["seed"]) == {keep} and len(finals) == len(cfg["algorithms"]) * len(cfg["tasks"])
    agg = pd.read_csv(tables / "aggregate_metrics.csv")
    assert (agg["n_runs"] == 1).all(), agg
    exclusions = pd.read_csv(tables / "score_exclusions.csv")
    assert drop not in set(exclusions.get("seed", []))
    paper = pd.read_csv(tables / "paper_comparison.csv")
    assert (paper["repro_n_seeds"].fillna(1) <= 1).all() and (paper["expected_runs"] == 1).all()
    bimodality = pd.read_csv(tables / "bimodality.csv")
    assert set(bimodality["seed"]) <= {keep}
    problems = pd.read_csv(tables / "problem_runs.csv")
    ignored = problems[problems["seed"] == drop]
    assert len(ignored) == len(cfg["algorithms"]) * len(cfg["tasks"]), problems
    assert ignored["reason"].str.contains("not in the config").all(), ignored
    # the profiles and curves are computed from the same single-seed scores
    for name in ("performance_profiles", "sample_efficiency"):
        assert len(pd.read_csv(tables / f"{name}.csv")), name
    assert (copy / "results" / cfg["name"] / "runs" / cfg["algorithms"][0] / cfg["tasks"][0] / f"seed{drop}").is_dir()


@pytest.mark.parametrize("change, culprit", MALFORMED)
def test_malformed_config_rejected(tmp_path, change, culprit):
    """The pipeline refuses a malformed config with gorl.experiment's lines for it (one per
    problem; the cases are test_experiment's: tests/malformed_configs.py)."""
    from gorl import experiment
    from gorl.errors import ExperimentError

    cfg_path = _config(tmp_path, **change)
    with pytest.raises(ExperimentError) as e:
        experiment.load(yaml.safe_load(cfg_path.read_text()))
    lines = str(e.value).splitlines()
    assert lines[0].startswith("config: ") and culprit in str(e.value), lines
    out = snakemake(tmp_path, "--cores", "1", "--configfile", str(cfg_path), timeout=120)
    assert out.returncode != 0
    err = out.stderr.splitlines()
    assert lines[0] in err, (lines, out.stderr[-3000:])
    at = err.index(lines[0])
    assert err[at:at + len(lines)] == lines, (lines, out.stderr[-3000:])
    assert not (tmp_path / "results").exists(), "a job started despite the bad config"


def test_unknown_task_is_named_first(tmp_path):
    """The root cause leads: not "analysis.action_figure.task ... is not one of tasks"."""
    cfg_path = _config(tmp_path, tasks=["nosuch-task"])
    out = snakemake(tmp_path, "-n", "--configfile", str(cfg_path), timeout=120)
    assert out.returncode != 0
    first = next(ln for ln in out.stderr.splitlines() if ln.startswith("config: "))
    assert first.startswith("config: tasks[0]: unknown task 'nosuch-task'"), out.stderr[-3000:]


def test_shipped_configs_list_the_recorded_jobs():
    """`snakemake -n` on every shipped config lists the jobs recorded in tests/data/workflow_jobs.json
    (rule, inputs, outputs, logs, wildcards, resources, training command): a refactoring of the
    workflow changes none of them. Re-record (python tests/workflow_jobs.py) only for a meant change."""
    from workflow_jobs import CONFIGS, RECORD, dry_run

    recorded = json.loads(RECORD.read_text())
    assert sorted(recorded) == sorted(CONFIGS)
    for config in CONFIGS:
        now = dry_run(config)
        old = recorded[config]
        gone = [j for j in old if j not in now]
        new = [j for j in now if j not in old]
        assert not gone and not new, (config, gone[:2], new[:2])


def test_training_job_moves_a_different_run_aside(tmp_path):
    """The training job decides run identity with the CLI's rule (gorl.experiment.run_differences):
    a run directory whose config.yaml differs from the request is moved aside, nothing is lost."""
    from gorl import experiment

    run = tmp_path / "runs" / "ppo" / "cartpole-balance" / "seed0"
    run.mkdir(parents=True)
    old = experiment.requested_identity("ppo", "cartpole-balance", 0, "smoke", 3840, [], [])
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    (run / "checkpoint.pt").write_bytes(b"an older run's checkpoint")
    out = subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "train.py"), "--status",
                          str(run / "status.json"), "--log", str(tmp_path / "train.log"), "--", "ppo",
                          "cartpole-balance", "--seed", "0", "--steps", "1920", "--preset", "smoke"],
                         capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr + (tmp_path / "train.log").read_text()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    (stale,) = run.parent.glob("seed0.stale-*")
    assert (stale / "checkpoint.pt").read_bytes() == b"an older run's checkpoint"
    assert yaml.safe_load((stale / "config.yaml").read_text()) == old


def _ppo_smoke_run_in_a_pipeline(ppo_smoke_run: Path, work: Path, name: str) -> tuple[Path, str, Path]:
    """A pipeline config in ``work`` whose one run is conftest's ``ppo_smoke_run`` (the same
    arguments: conftest.PPO_SMOKE), and that run copied to where the pipeline keeps it; returns
    (config path, the run's status.json target relative to ``work``, the run directory)."""
    import shutil

    from conftest import PPO_SMOKE
    from gorl import rundir
    steps = int(PPO_SMOKE[PPO_SMOKE.index("--steps") + 1])
    cfg = {"name": name, "algorithms": ["ppo"], "tasks": ["cartpole-balance"], "seeds": [0], "steps": steps,
           "preset": "smoke"}
    cfg_path = work / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    target = str(Path("results", name, "runs", "ppo", "cartpole-balance", "seed0", rundir.STATUS))
    run = work / Path(target).parent
    shutil.copytree(ppo_smoke_run, run)
    return cfg_path, target, run


def test_a_forced_rerun_of_an_ended_run_trains_anew_and_keeps_the_old_one(ppo_smoke_run, tmp_path):
    """``--forcerun train`` (docs/pipeline.md: how to retrain after a library edit) retrains an
    ended run from its first step, the ended one moved aside to ``seedN.stale-<time>`` and said so
    in the job's log and output; it used to resume from the run's last checkpoint, which redoes only
    what follows it. (A run killed before it ended, no provenance.json, still resumes: the
    trust_checkpoints test below.)"""
    from conftest import strip_wall
    from gorl import rundir
    cfg_path, target, run = _ppo_smoke_run_in_a_pipeline(ppo_smoke_run, tmp_path, "force")
    (run / "marker").write_text("the ended run")
    out = snakemake(tmp_path, target, "-n", "--configfile", str(cfg_path))
    assert "Nothing to be done" in out.stdout + out.stderr, out.stdout[-2000:]
    out = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(cfg_path), "--forcerun", "train", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (stale,) = run.parent.glob("seed0.stale-*")
    assert (stale / "marker").read_text() == "the ended run" and (stale / rundir.PROVENANCE).exists()
    assert f"moved {run.relative_to(tmp_path)} aside to {stale.name}: it holds this run ended" in out.stderr
    log = (tmp_path / "results" / "force" / "logs" / "train" / "ppo" / "cartpole-balance" / "seed0.log").read_text()
    assert "resumed" not in log and "training anew" in log, log
    assert json.loads((run / rundir.STATUS).read_text())["status"] == rundir.COMPLETED
    assert strip_wall(run / "evals.csv") == strip_wall(ppo_smoke_run / "evals.csv")  # the same run, from its start


def test_runs_per_gpu_places_several_gpu_runs_per_gpu_and_gives_each_its_memory_share(tmp_path):
    """runs_per_gpu: 2 with `--resources gpu=1` (one GPU): two of the three GPU jobs (device cuda) start
    at once beside the CPU job (three jobs, not two: the pool is scaled; not four: it still limits), and
    the jobs' environment carries JAX's memory share (a CPU run's provenance.json records it). On a
    machine without CUDA the GPU runs then fail (recorded as failed; the workflow ends non-zero)."""
    cfg = {"name": "gpushare", "algorithms": ["ppo", "fpo"], "tasks": ["cartpole-balance"], "seeds": [0, 1, 2],
           "steps": 1920, "preset": "smoke", "runs_per_gpu": 2,
           "algorithm_overrides": {"fpo": {"set": {"device": "cuda"}}}}
    (tmp_path / "gpushare.yaml").write_text(yaml.safe_dump(cfg))
    runs = Path("results", "gpushare", "runs")  # targets: relative to the working directory
    targets = [str(runs / "fpo" / "cartpole-balance" / f"seed{s}" / "status.json") for s in (0, 1, 2)]
    targets.append(str(runs / "ppo" / "cartpole-balance" / "seed0" / "status.json"))
    env = {k: v for k, v in _env().items() if not k.startswith("XLA_")}
    out = subprocess.run(_snakemake_cmd(tmp_path, *targets, "--cores", "4", "--resources", "gpu=1", "--configfile",
                                        str(tmp_path / "gpushare.yaml")),
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    text = out.stdout + out.stderr
    first = next((ln for ln in text.splitlines() if ln.startswith("Execute ")), None)
    assert first == "Execute 3 jobs...", text[-3000:]
    prov = json.loads((tmp_path / runs / "ppo" / "cartpole-balance" / "seed0" / "provenance.json").read_text())
    assert prov["jax_memory"] == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.375", "XLA_CLIENT_MEM_FRACTION": "0.375",
                                  "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}


def test_trust_checkpoints_resumes_an_older_versions_interrupted_run_and_retrains_nothing(ppo_smoke_run, tmp_path):
    """An interrupted run whose checkpoints an earlier version wrote (numpy arrays, pickled): its
    training job fails with the CLI's one line, which tells the pipeline user what to do, and
    changes nothing; `--config trust_checkpoints=true` makes the job pass --trust-checkpoint and the
    run resumes to the end of the uninterrupted one. The setting is not in the job's command, so
    switching it back reruns nothing (Snakemake reruns a job whose command or params change)."""
    import torch

    from gorl import plaindata, rundir
    cfg_path, target, run = _ppo_smoke_run_in_a_pipeline(ppo_smoke_run, tmp_path, "trust")
    for name in (rundir.STATUS, rundir.PROVENANCE):  # killed after its last checkpoint, before it ended
        (run / name).unlink()
    for name in (rundir.CHECKPOINT, rundir.CHECKPOINT_PREVIOUS):
        torch.save(plaindata.decode(torch.load(run / name, weights_only=True)), run / name)  # as pickled before
        assert rundir.pickled_globals(run / name)
    files = lambda: {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != rundir.LOCK}  # noqa: E731
    before = files()

    out = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(cfg_path), timeout=600)
    assert out.returncode != 0
    said = [ln for ln in out.stderr.splitlines() if "holds pickled objects" in ln]
    assert said and all(ln == said[0] for ln in said), out.stderr[-3000:]
    assert said[0].startswith("gorl-bench rejected its input (exit 2): ") and f"{Path(target).parent / rundir.CHECKPOINT} holds" in said[0]
    assert "snakemake --config trust_checkpoints=true" in said[0], said[0]
    assert files() == before

    out = snakemake(tmp_path, target, "--cores", "1", "--configfile", str(cfg_path), "--config",
                    "trust_checkpoints=true", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((run / rundir.STATUS).read_text())["status"] == rundir.COMPLETED
    log = (tmp_path / "results" / "trust" / "logs" / "train" / "ppo" / "cartpole-balance" / "seed0.log").read_text()
    command = [ln for ln in log.splitlines() if ln.startswith("# ") and " gorl-bench train " in ln][-1]
    assert command.split(" --out ")[0].endswith("--trust-checkpoint"), command
    assert "resumed from" in log
    evals = [pd.read_csv(d / rundir.EVALS).drop(columns="wall_time") for d in (run, ppo_smoke_run)]
    pd.testing.assert_frame_equal(*evals)

    out = snakemake(tmp_path, target, "-n", "--configfile", str(cfg_path), timeout=300)
    assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]
