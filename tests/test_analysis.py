"""Aggregation on hand-made run directories, and our statistics against direct rliable calls.

The run directories follow the CLI's contract (status.json, evals.csv, probes.npz); nothing
here trains. The rliable comparisons call ``rliable.library.get_interval_estimates`` with
``rliable.metrics`` on the same score matrix after ``np.random.seed(seed)`` (rliable ignores
``random_state`` and draws from NumPy's global state, spec 12.10) and require our
point estimates and 95% CIs to agree to floating-point precision.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rliable import library as rly
from rliable import metrics as rmetrics

from analysis import actions, collect, paper, physics, stats

SEED = 7


# ----------------------------------------------------------------------------- fixtures
def make_run(root: Path, algo: str, task: str, seed: int, returns, status: str | None = "completed",
             steps=None, reason=None, stage=None) -> Path:
    d = root / algo / task / f"seed{seed}"
    d.mkdir(parents=True)
    steps = list(steps if steps is not None else range(0, 1000 * len(returns), 1000))
    pd.DataFrame({"env_step": steps, "return_mean": returns, "return_std": [1.0] * len(returns),
                  "episodes": 2, "stage": stage if stage is not None else [0] * len(returns),
                  "wall_time": np.arange(len(returns), dtype=float)}).to_csv(d / "evals.csv", index=False)
    if status is not None:
        (d / "status.json").write_text(json.dumps({"status": status, "reason": reason, "env_steps": steps[-1],
                                                   "algorithm": algo, "task": task, "seed": seed}))
    return d


@pytest.fixture
def runs(tmp_path):
    """2 algorithms x 2 tasks x 3 seeds, plus the awkward cases.

    * ppo/cheetah-run/seed0: best eval in the middle (final score must be the LAST eval)
    * ppo/walker-walk/seed2: diverged; its last evaluation is NaN
    * fpo/walker-walk/seed1: missing (expected, no directory)
    * fpo/cheetah-run/seed2: failed (status written by the workflow's wrapper)
    * fpo/walker-walk/seed2: incomplete (evals.csv, no status.json)
    """
    root = tmp_path / "runs"
    make_run(root, "ppo", "cheetah-run", 0, [10.0, 800.0, 300.0])
    make_run(root, "ppo", "cheetah-run", 1, [20.0, 200.0, 400.0])
    make_run(root, "ppo", "cheetah-run", 2, [30.0, 100.0, 500.0])
    make_run(root, "ppo", "walker-walk", 0, [5.0, 50.0, 600.0])
    make_run(root, "ppo", "walker-walk", 1, [5.0, 60.0, 700.0])
    make_run(root, "ppo", "walker-walk", 2, [5.0, 250.0, np.nan], status="diverged", reason="non-finite loss")
    make_run(root, "fpo", "cheetah-run", 0, [1.0, 2.0, 900.0])
    make_run(root, "fpo", "cheetah-run", 1, [1.0, 2.0, 950.0])
    make_run(root, "fpo", "cheetah-run", 2, [1.0, 2.0], status="failed", reason="exit code 1")
    make_run(root, "fpo", "walker-walk", 0, [1.0, 2.0, 100.0])
    make_run(root, "fpo", "walker-walk", 2, [1.0, 2.0], status=None)
    expected = [(a, t, s) for a in ("ppo", "fpo") for t in ("cheetah-run", "walker-walk") for s in range(3)]
    return root, expected


def _final(finals, a, t, s):
    r = finals[(finals["algorithm"] == a) & (finals["task"] == t) & (finals["seed"] == s)]
    assert len(r) == 1
    return r.iloc[0]


# --------------------------------------------------------------------------- aggregation
def test_tidy_table(runs):
    root, expected = runs
    tidy, finals = collect.collect(root, expected)
    assert list(tidy.columns) == collect.TIDY_COLUMNS
    assert len(tidy) == 3 * 6 + 3 * 2 + 2 + 3 + 2  # every evaluation of every run with evals.csv
    both = tidy.dropna(subset=["return"])
    np.testing.assert_allclose(both["normalized_return"], both["return"] / 1000.0)
    assert set(tidy["status"]) == {"completed", "diverged", "failed", "incomplete"}
    assert len(finals) == len(expected)
    assert list(finals.columns) == collect.FINAL_COLUMNS


def test_final_score_is_last_evaluation(runs):
    root, expected = runs
    _, finals = collect.collect(root, expected)
    r = _final(finals, "ppo", "cheetah-run", 0)
    assert r["status"] == "completed" and bool(r["included"])
    assert r["final_return"] == 300.0  # not the best (800): spec 1.4
    assert r["final_env_step"] == 2000
    assert r["final_normalized"] == pytest.approx(0.3)


def test_final_scores_say_how_many_attempts_trained_a_run_and_under_which_code(runs):
    """provenance.json's attempts (gorl.core.run.Run.attempts) reach final_scores.csv; a run
    resumed under other code or on another kind of device is listed by collect.mixed_attempts and
    stays in every table."""
    root, expected = runs
    one = {"env_step": 0, "git_commit": "aaa", "versions": {"torch": "2.13.0"}, "python": "3.11.7"}
    later = dict(one, env_step=1000, git_commit="bbb", versions={"torch": "2.14.0"})
    d = collect.run_dir(root, "ppo", "cheetah-run", 1)
    (d / "provenance.json").write_text(json.dumps({"attempts": [one, later]}))
    (collect.run_dir(root, "ppo", "cheetah-run", 2) / "provenance.json").write_text(
        json.dumps({"attempts": [one, dict(one, env_step=1000)]}))
    (collect.run_dir(root, "fpo", "cheetah-run", 0) / "provenance.json").write_text(
        json.dumps({"attempts": [dict(one, device="cuda:0"), dict(one, env_step=1000, device="cpu")]}))
    _, finals = collect.collect(root, expected)
    r = _final(finals, "ppo", "cheetah-run", 1)
    assert r["attempts"] == 2 and r["code_changes"] == "git_commit aaa -> bbb; torch 2.13.0 -> 2.14.0"
    assert bool(r["included"]) and r["final_return"] == 400.0
    assert _final(finals, "ppo", "cheetah-run", 2)["attempts"] == 2  # resumed, the same code
    assert np.isnan(_final(finals, "ppo", "cheetah-run", 0)["attempts"])  # no provenance.json here
    assert _final(finals, "fpo", "cheetah-run", 0)["device_changes"] == "device cuda:0 -> cpu"
    mixed = collect.mixed_attempts(finals)
    assert sorted(zip(mixed["algorithm"], mixed["task"], mixed["seed"])) == [("fpo", "cheetah-run", 0),
                                                                            ("ppo", "cheetah-run", 1)]


@pytest.mark.parametrize("policy, score", [("last_eval", 250.0), ("zero", 0.0)])
def test_diverged_run_is_included_and_flagged(runs, policy, score):
    root, expected = runs
    _, finals = collect.collect(root, expected, diverged_policy=policy)
    r = _final(finals, "ppo", "walker-walk", 2)
    assert r["status"] == "diverged" and bool(r["diverged"]) and bool(r["included"])
    assert r["final_return"] == score
    assert r["final_normalized"] == score / 1000.0
    assert r["reason"] == "non-finite loss"


def test_missing_failed_incomplete_are_listed_not_dropped(runs):
    root, expected = runs
    _, finals = collect.collect(root, expected)
    for (a, t, s), status in {("fpo", "walker-walk", 1): "missing", ("fpo", "cheetah-run", 2): "failed",
                              ("fpo", "walker-walk", 2): "incomplete"}.items():
        r = _final(finals, a, t, s)
        assert r["status"] == status and not bool(r["included"])
        assert np.isnan(r["final_return"])
        assert isinstance(r["reason"], str) and r["reason"]
    probs = collect.problems(finals)
    assert set(probs["status"]) == {"missing", "failed", "incomplete"} and len(probs) == 3


def test_tables_contain_exactly_the_experiment(runs, tmp_path):
    """A seed removed from the config leaves every table; its directory is listed as ignored."""
    root, expected = runs
    fewer = [(a, t, s) for a, t, s in expected if s != 2]
    tidy, finals = collect.collect(root, fewer)
    assert set(tidy["seed"]) == {0, 1} and set(finals["seed"]) == {0, 1}
    assert len(finals) == len(fewer)
    scores, _, excluded = stats.score_matrices(finals)
    assert scores["ppo"].shape[0] == 2 and 2 not in set(excluded["seed"])
    assert (paper.comparison(finals)["expected_runs"] == 2).all()
    ignored = collect.ignored_runs(root, fewer)
    assert set(ignored["seed"]) == {2} and set(ignored["status"]) == {"ignored"}
    assert len(ignored) == 4 and ignored["reason"].str.contains("not in the config").all()
    out = {k: tmp_path / "t" / f"{k}.{'parquet' if k == 'tidy_parquet' else 'csv'}"
           for k in ("tidy_parquet", "tidy_csv", "finals", "problems")}
    collect.save(tidy, finals, out, ignored=ignored)
    problems = pd.read_csv(out["problems"])
    assert set(problems.loc[problems["seed"] == 2, "status"]) == {"ignored"}
    assert set(pd.read_csv(out["finals"])["seed"]) == {0, 1}


def test_save_and_reload(runs, tmp_path):
    root, expected = runs
    tidy, finals = collect.collect(root, expected)
    out = {k: tmp_path / "t" / f"{k}.{'parquet' if k == 'tidy_parquet' else 'csv'}"
           for k in ("tidy_parquet", "tidy_csv", "finals", "problems")}
    collect.save(tidy, finals, out)
    back = pd.read_parquet(out["tidy_parquet"])
    pd.testing.assert_frame_equal(back, tidy)
    assert len(pd.read_csv(out["problems"])) == 3


def test_bad_diverged_policy_is_named(runs):
    root, expected = runs
    with pytest.raises(ValueError, match="diverged_policy"):
        collect.collect(root, expected, diverged_policy="drop")


def test_score_matrices_exclude_incomplete_seeds(runs):
    root, expected = runs
    _, finals = collect.collect(root, expected)
    scores, tasks, excluded = stats.score_matrices(finals)
    assert tasks == ["cheetah-run", "walker-walk"]
    # ppo: 3 seeds (the diverged one counts); fpo: only seed 0 has both tasks usable
    np.testing.assert_allclose(scores["ppo"], [[0.3, 0.6], [0.4, 0.7], [0.5, 0.25]])
    np.testing.assert_allclose(scores["fpo"], [[0.9, 0.1]])
    assert set(excluded.loc[excluded["algorithm"] == "fpo", "seed"]) == {1, 2}
    assert not np.isnan(np.concatenate([s.ravel() for s in scores.values()])).any()


def test_algorithm_without_any_usable_run_is_excluded_alone(runs):
    root, expected = runs
    expected = expected + [("dppo", t, s) for t in ("cheetah-run", "walker-walk") for s in range(2)]
    _, finals = collect.collect(root, expected)  # dppo: every run missing
    scores, tasks, excluded = stats.score_matrices(finals)
    assert tasks == ["cheetah-run", "walker-walk"] and set(scores) == {"ppo", "fpo"}
    assert "dppo" in set(excluded["algorithm"])


def test_paper_table_uses_final_scores(runs):
    root, expected = runs
    _, finals = collect.collect(root, expected)
    table = paper.comparison(finals)
    r = table[(table["algorithm"] == "ppo") & (table["task"] == "cheetah-run")].iloc[0]
    assert r["repro_mean"] == pytest.approx(400.0) and r["repro_n_seeds"] == 3
    assert r["paper_return"] == 671  # spec 7.1, Gaussian PPO on CheetahRun
    assert set(zip(table["algorithm"], table["task"])) == {(a, t) for a, t, _ in expected}
    assert "| cheetah-run |" in paper.markdown(table)


def test_paper_table_names_the_physics_per_task(tmp_path):
    """The physics column: dm_control with the Playground port's differences for suite names,
    "Playground (MJX)" for playground: names (reported against the paper's suite row)."""
    tasks = ("finger-spin", "fish-swim", "playground:CheetahRun", "reacher-easy")
    expected = [("ppo", t, s) for t in tasks for s in range(2)]
    for _, t, s in expected:
        make_run(tmp_path, "ppo", t, s, [100.0, 200.0 + s])
    _, finals = collect.collect(tmp_path, expected)
    table = paper.comparison(finals).set_index("task")
    col = table["physics"]
    assert col["finger-spin"].startswith("dm_control (sim 0.01 s, Euler, 200 solver iterations)")
    assert "0.005 s implicitfast" in col["finger-spin"] and "elliptic" in col["finger-spin"]
    assert col["fish-swim"].startswith("dm_control (sim 0.004 s") and "0.002 vs 0.004 s" in col["fish-swim"]
    assert col["playground:CheetahRun"] == "Playground (MJX), as in the paper"
    assert col["reacher-easy"] == "dm_control"  # no Playground counterpart recorded
    assert table.loc["playground:CheetahRun", "paper_return"] == 671  # the paper's CheetahRun row
    assert table.loc["finger-spin", "paper_return"] == 490
    assert np.isnan(table.loc["reacher-easy", "paper_return"])
    md = paper.markdown(table.reset_index())
    assert "| task | physics | algorithm |" in md
    assert "| playground:CheetahRun | MJX | ppo |" in md  # a short tag per row ...
    assert "| finger-spin | dm_control | ppo |" in md
    legend = md[md.index("**Physics.**"):]  # ... the physics said once per task, below the table
    assert md.count("0.005 s implicitfast") == 1 and legend.count("- finger-spin: dm_control (sim 0.01 s") == 1
    assert "- playground:CheetahRun: Playground (MJX), as in the paper" in legend


def test_paper_table_reports_the_release_target(tmp_path):
    """target_return of the release per task, and how many runs' LAST evaluation met it (the
    release's performance_target_met); a best evaluation above the target does not count."""
    expected = [("gorl_fm", "cheetah-run", s) for s in range(3)] + [("ppo", "reacher-easy", 0)]
    make_run(tmp_path, "gorl_fm", "cheetah-run", 0, [100.0, 950.0, 880.0])  # best met it, last did not
    make_run(tmp_path, "gorl_fm", "cheetah-run", 1, [100.0, 500.0, 900.0])  # last == target: met
    make_run(tmp_path, "gorl_fm", "cheetah-run", 2, [100.0, 500.0, 905.0])
    make_run(tmp_path, "ppo", "reacher-easy", 0, [1.0, 2.0])
    _, finals = collect.collect(tmp_path, expected)
    table = paper.comparison(finals).set_index("task")
    assert table.loc["cheetah-run", "target_return"] == 900  # configs/tasks/CheetahRun.toml
    assert table.loc["cheetah-run", "target_met_runs"] == 2
    assert table.loc["cheetah-run", "repro_mean"] == pytest.approx((880 + 900 + 905) / 3)
    assert np.isnan(table.loc["reacher-easy", "target_return"])
    md = paper.markdown(table.reset_index())
    assert "| 881 ± 15 | 900 | 2/3 |" in md and "**last** evaluation" in md
    targets = paper.read_targets().set_index("task")["target_return"].to_dict()
    assert targets == {"cheetah-run": 900, "finger-spin": 950, "finger-turn_hard": 870, "fish-swim": 646,
                       "hopper-stand": 833, "walker-walk": 958, "humanoid-stand": 900, "humanoid-run": 300}


def test_physics_names():
    assert physics.physics("playground:FingerSpin") == "Playground (MJX), as in the paper"
    assert physics.physics("playground:CartpoleBalance") == "Playground (MJX)"  # not a paper task
    assert physics.physics("playground:AcrobotSwingup") == "Playground (MJX)"
    assert physics.physics("gym:Pendulum-v1").startswith("gymnasium")
    assert physics.physics("cartpole-balance").startswith("dm_control (sim 0.01 s, RK4")
    assert physics.paper_key("playground:FingerTurnHard") == "finger-turn_hard"
    assert physics.paper_key("playground:AcrobotSwingup") == "playground:AcrobotSwingup"
    assert physics.paper_key("walker-walk") == "walker-walk"
    rows = physics.read_physics()
    assert set(rows.loc[rows["in_paper"], "task"]) == {"cheetah-run", "finger-spin", "finger-turn_hard",
                                                       "fish-swim", "hopper-stand", "walker-walk"}


def test_task_physics_dm_control_columns_match_the_installed_suite():
    """The dm_control half of data/task_physics.csv is what the installed suite loads."""
    from dm_control import suite
    integrators = {0: "Euler", 1: "RK4", 2: "implicit", 3: "implicitfast"}
    for r in physics.read_physics().itertuples():
        domain, name = r.task.split("-", 1)
        env = suite.load(domain, name)
        opt = env.physics.model.opt
        assert (opt.timestep, env.control_timestep()) == pytest.approx((r.dmc_sim_dt, r.dmc_ctrl_dt)), r.task
        assert (integrators[int(opt.integrator)], int(opt.iterations), int(opt.ls_iterations)) == \
            (r.dmc_integrator, r.dmc_iterations, r.dmc_ls_iterations), r.task


# ---------------------------------------------------------------------- rliable agreement
@pytest.fixture
def score_dict():
    rng = np.random.default_rng(0)
    out = {"a": rng.uniform(0, 1, (5, 4)), "b": rng.uniform(0.2, 1.1, (5, 4)), "c": rng.beta(2, 5, (6, 4))}
    out["a"][0, 0] = out["a"][1, 0]  # ties happen with real scores (e.g. 0 on a failed task)
    return out


def _rliable_aggregate(x):
    return np.array([rmetrics.aggregate_iqm(x), rmetrics.aggregate_median(x), rmetrics.aggregate_mean(x),
                     rmetrics.aggregate_optimality_gap(x)])


def test_aggregate_metrics_equal_rliable(score_dict):
    reps = 500
    ours = stats.aggregate_metrics(score_dict, reps, SEED)
    for a, s in score_dict.items():
        np.random.seed(SEED)
        point, ci = rly.get_interval_estimates({a: s}, _rliable_aggregate, reps=reps)
        got = ours[ours["algorithm"] == a].set_index("metric").loc[list(stats.METRICS)]
        np.testing.assert_allclose(got["estimate"], point[a], rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["lower"], ci[a][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["upper"], ci[a][1], rtol=0, atol=1e-12)
    # reproducible: same seed, same numbers; another seed, other CIs
    pd.testing.assert_frame_equal(ours, stats.aggregate_metrics(score_dict, reps, SEED))
    assert not np.allclose(ours["lower"], stats.aggregate_metrics(score_dict, reps, SEED + 1)["lower"])


def test_probability_of_improvement_equals_rliable(score_dict):
    reps = 300
    pairs = [("a", "b"), ("c", "a")]
    ours = stats.probability_of_improvement(score_dict, pairs, reps, SEED)
    assert list(zip(ours["algorithm_x"], ours["algorithm_y"])) == pairs
    for r in ours.itertuples():
        x, y = score_dict[r.algorithm_x], score_dict[r.algorithm_y]
        np.random.seed(SEED)
        point, ci = rly.get_interval_estimates({"p": [x, y]}, rmetrics.probability_of_improvement, reps=reps)
        assert r.probability == pytest.approx(float(np.squeeze(point["p"])), abs=1e-12)
        lo, hi = np.asarray(ci["p"]).ravel()
        assert r.lower == pytest.approx(lo, abs=1e-12) and r.upper == pytest.approx(hi, abs=1e-12)


def test_performance_profiles_equal_rliable(score_dict):
    reps, taus = 300, np.linspace(0, 1, 11)
    ours = stats.performance_profiles(score_dict, taus, reps, SEED)
    for a, s in score_dict.items():
        np.random.seed(SEED)
        prof, ci = rly.create_performance_profile({a: s}, taus, reps=reps)
        got = ours[ours["algorithm"] == a].sort_values("tau")
        np.testing.assert_allclose(got["fraction"], prof[a], atol=1e-12)
        np.testing.assert_allclose(got["lower"], ci[a][0], atol=1e-12)
        np.testing.assert_allclose(got["upper"], ci[a][1], atol=1e-12)


def test_sample_efficiency_equals_rliable():
    rng = np.random.default_rng(1)
    curves = {"a": np.cumsum(rng.uniform(0, 0.1, (4, 3, 6)), axis=-1), "b": rng.uniform(0, 1, (3, 3, 6))}
    grid = np.linspace(0, 5000, 6)
    reps = 300
    ours = stats.sample_efficiency(curves, grid, reps, SEED)

    def iqm(scores):
        return np.array([rmetrics.aggregate_iqm(scores[..., g]) for g in range(scores.shape[-1])])

    for a, c in curves.items():
        np.random.seed(SEED)
        point, ci = rly.get_interval_estimates({a: c}, iqm, reps=reps)
        got = ours[ours["algorithm"] == a]
        np.testing.assert_allclose(got["env_step"], grid)
        np.testing.assert_allclose(got["iqm"], point[a], atol=1e-12)
        np.testing.assert_allclose(got["lower"], ci[a][0], atol=1e-12)
        np.testing.assert_allclose(got["upper"], ci[a][1], atol=1e-12)


def test_engine_rliable_matches_vectorised(score_dict):
    a = stats.aggregate_metrics(score_dict, 200, SEED)
    b = stats.aggregate_metrics(score_dict, 200, SEED, engine="rliable")
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- curves, probes
def test_curves_on_grid_interpolates_without_extrapolating(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "ppo", "t-a", 0, [0.0, 500.0, 1000.0], steps=[0, 1000, 2000])
    make_run(root, "ppo", "t-a", 1, [100.0, 300.0], steps=[0, 4000])  # longer run: grid stops at 2000
    make_run(root, "ppo", "t-b", 0, [0.0, 200.0, 400.0], steps=[0, 1000, 2000])
    make_run(root, "ppo", "t-b", 1, [0.0, 100.0, 200.0, np.nan], steps=[0, 500, 1000, 1500],
             status="diverged")
    tidy, finals = collect.collect(root)
    curves, grid = stats.curves_on_grid(tidy, finals, ["t-a", "t-b"], n_points=5)
    np.testing.assert_allclose(grid, [0, 500, 1000, 1500, 2000])
    c = curves["ppo"]  # (seeds, tasks, grid)
    np.testing.assert_allclose(c[0, 0], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(c[1, 0], [0.1, 0.125, 0.15, 0.175, 0.2])
    np.testing.assert_allclose(c[1, 1], [0, 0.1, 0.2, 0.2, 0.2])  # diverged: held at its final score
    tidy0, finals0 = collect.collect(root, diverged_policy="zero")
    curves0, _ = stats.curves_on_grid(tidy0, finals0, ["t-a", "t-b"], n_points=5, diverged_policy="zero")
    assert curves0["ppo"][1, 1, -1] == 0.0


def _gmm2_alone(x, iters=200, tol=1e-8):
    """The textbook EM of one sample: the fit gmm2_rows must give each row."""
    x = np.asarray(x, dtype=float)
    if x.size < 4 or np.std(x) < 1e-9:
        return 0.0, 0.0, float(np.mean(x)), float(np.mean(x))
    mu = np.quantile(x, [0.25, 0.75])
    var = np.full(2, max(np.var(x) / 4, 1e-6))
    w = np.array([0.5, 0.5])
    floor = max(1e-6, 1e-4 * np.var(x))
    prev = -np.inf
    for _ in range(iters):
        logp = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(w)
        mx = logp.max(axis=1, keepdims=True)
        ll = float((mx[:, 0] + np.log(np.exp(logp - mx).sum(axis=1))).sum())
        r = np.exp(logp - mx)
        r /= r.sum(axis=1, keepdims=True)
        nk = r.sum(axis=0) + 1e-12
        w, mu = nk / nk.sum(), (r * x[:, None]).sum(axis=0) / nk
        var = np.maximum((r * (x[:, None] - mu) ** 2).sum(axis=0) / nk, floor)
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    o = np.argsort(mu)
    mu, var, w = mu[o], var[o], w[o]
    return float(np.sqrt(2) * abs(mu[1] - mu[0]) / np.sqrt(var[0] + var[1])), float(w.min()), float(mu[0]), float(mu[1])


def test_mixtures_fitted_together_equal_each_fitted_alone():
    """gmm2_rows fits many samples at once (the bimodality analysis fits thousands): each row
    converges on its own, so its fit is the one-sample EM's, also for rows that stop early or late,
    constant rows and actions piled at the bounds."""
    rng = np.random.default_rng(1)
    k = 256
    rows = [rng.normal(0, 0.2, k), np.concatenate([rng.normal(-0.7, 0.1, k // 2), rng.normal(0.7, 0.1, k // 2)]),
            np.full(k, 0.3), np.clip(rng.normal(0, 3, k), -1, 1), rng.uniform(-1, 1, k),
            np.concatenate([rng.normal(0.5, 0.05, k - 10), rng.normal(-0.9, 0.01, 10)]), np.where(rng.random(k) < 0.5, -1.0, 1.0)]
    rows += [np.tanh(rng.normal(rng.uniform(-2, 2), rng.uniform(0.05, 2), k)) for _ in range(40)]
    x = np.stack(rows)
    together = actions.gmm2_rows(x)
    alone = np.array([_gmm2_alone(r) for r in x])
    np.testing.assert_allclose(together, alone, rtol=1e-7, atol=1e-9)
    for iters in (1, 3):  # stopped by the iteration limit, not convergence
        np.testing.assert_allclose(actions.gmm2_rows(x, iters=iters), [_gmm2_alone(r, iters=iters) for r in x],
                                   rtol=1e-7, atol=1e-9)
    assert actions.gmm2(rows[1]) == pytest.approx(tuple(alone[1]), rel=1e-7)
    assert actions.gmm2_rows(x[:0]).shape == (0, 4) and actions.gmm2_rows(np.ones((2, 3)))[:, :2].tolist() == [[0, 0]] * 2


def test_bimodality_statistics():
    rng = np.random.default_rng(0)
    one = rng.normal(0, 0.2, 4000)
    two = np.concatenate([rng.normal(-0.7, 0.1, 2000), rng.normal(0.7, 0.1, 2000)])
    assert actions.bimodality_coefficient(one) == pytest.approx(1 / 3, abs=0.03)
    assert actions.bimodality_coefficient(two) > actions.BC_THRESHOLD
    d_one, _, _, _ = actions.gmm2(one)
    d_two, wmin, lo, hi = actions.gmm2(two)
    assert d_two > 2 > d_one
    assert wmin == pytest.approx(0.5, abs=0.05) and lo == pytest.approx(-0.7, abs=0.05) and hi == pytest.approx(0.7, abs=0.05)
    probes = {"actions": np.stack([np.stack([one[:250], two[::16]])[:, :, None]] * 3), "env_step": np.array([0, 10, 20])}
    tab = actions.bimodality_table(probes, action_dim=0, probe_state=1, n_snapshots=2, algorithm="x")
    assert list(tab["eval_index"]) == [0, 2] and (tab["bc"] > actions.BC_THRESHOLD).all()
    assert (tab["frac_states_bc_gt_5_9"] == 0.5).all()
