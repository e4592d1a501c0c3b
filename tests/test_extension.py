"""Adding a baseline (docs/adding-a-baseline.md).

* presets may inherit another algorithm's preset (``base: "ppo:smoke"``);
* the example package examples/ppo_fixed_std resolves to PPO's hyperparameters plus its own,
  and its policy honours the Agent protocol;
* a throwaway baseline package made *outside* the source tree, installed as the walkthrough
  says, is listed, trains, passes check-run, is accepted by the pipeline's config check and
  shows its registry label in the figure legend; with ``-m slow`` it also runs through the
  real smoke workflow next to a built-in algorithm (the default suite's end-to-end workflow,
  tests/test_workflow.py, runs every registered algorithm and an ``imports:`` plug-in);
* the walkthrough's non-PPO baseline (A2C) is written out from the page and its commands run.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from gorl import registry
from gorl.config import ConfigError, build_config, resolve_preset, resolve_preset_sources

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ppo_fixed_std"
PPO_PRESETS = ROOT / "baselines" / "presets" / "ppo.yaml"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------- cross-algorithm presets
def test_preset_inherits_another_algorithms_preset(tmp_path):
    f = _write(tmp_path / "mine.yaml", """
        smoke:
          base: "ppo:smoke"
          num_envs: 4
          clip_eps: 0.2
        tiny:
          base: smoke
          total_steps: 1000
        """)
    # the child's plain clip_eps also replaces ppo's per-task clip_eps (the humanoids'): a later
    # layer's value of a key replaces the earlier layers' refinements of it (spec 13.2)
    ppo = {k: v for k, v in resolve_preset(PPO_PRESETS, "smoke").items() if not k.endswith("].clip_eps")}
    assert resolve_preset(f, "smoke") == {**ppo, "num_envs": 4, "clip_eps": 0.2}
    values, origin = resolve_preset_sources(f, "tiny")
    assert values == {**ppo, "num_envs": 4, "clip_eps": 0.2, "total_steps": 1000}
    assert origin["total_steps"] == "mine.yaml:tiny"
    assert origin["clip_eps"] == "mine.yaml:smoke"
    assert origin["num_epochs"] == "common.yaml:smoke"  # the shared base preset (issue 11, point 4)
    assert origin["actor_hidden"] == "ppo.yaml:all_presets"


@pytest.mark.parametrize("base, words", [
    ("ppx:smoke", ["ppx", "did you mean 'ppo'"]),
    ("ppo:tiny", ["'tiny'", "ppo.yaml", "available: paper, paper-v1, small, smoke"]),
    ("nosuch", ["'nosuch'", "mine.yaml:smoke"]),
])
def test_bad_base_is_named(tmp_path, base, words):
    f = _write(tmp_path / "mine.yaml", f"""
        smoke:
          base: "{base}"
        """)
    with pytest.raises(ConfigError) as e:
        resolve_preset(f, "smoke")
    for w in words:
        assert w in str(e.value)


def test_cycle_across_files_is_an_error(tmp_path):
    from baselines.config import PPOConfig
    from baselines.ppo import train
    a = _write(tmp_path / "a.yaml", 'smoke:\n  base: "cyc_b:smoke"\n')
    b = _write(tmp_path / "b.yaml", 'smoke:\n  base: "cyc_a:smoke"\n')
    algos = [registry.Algorithm(name=n, config_cls=PPOConfig, presets_file=f, train=train)
             for n, f in (("cyc_a", a), ("cyc_b", b))]
    import gorl.experiment  # noqa: F401  (its preset check runs at registration)
    with pytest.raises(registry.ContractError, match="algorithm 'cyc_a' .*preset 'smoke'.*unknown algorithm 'cyc_b'"):
        registry.register(algos[0])  # registration resolves the presets: the base is not registered
    for algo in algos:  # past the registration check, resolution itself names the cycle
        registry._REGISTRY[algo.name] = algo
    try:
        with pytest.raises(ConfigError, match="cycle a.yaml:smoke -> b.yaml:smoke -> a.yaml:smoke"):
            resolve_preset(a, "smoke")
    finally:
        for name in ("cyc_a", "cyc_b"):
            registry._REGISTRY.pop(name, None)


def test_inherited_key_unknown_to_the_config_names_where_it_was_set(tmp_path):
    from gorl.core.onpolicy import OnPolicyConfig
    f = _write(tmp_path / "mine.yaml", 'smoke:\n  base: "ppo:smoke"\n')
    with pytest.raises(ConfigError) as e:
        build_config(OnPolicyConfig, f, "smoke", "cartpole-balance")
    assert "unknown preset key 'actor_hidden'" in str(e.value)
    assert "(set in ppo.yaml:all_presets)" in str(e.value)  # PPO's own values (issue 11, point 4)


# ------------------------------------------------------------- entry points that go wrong
@pytest.fixture
def fresh_registry(monkeypatch):
    """Reload the registry (entry points included) in this process; restore it afterwards."""
    saved = dict(registry._REGISTRY)
    monkeypatch.setattr(registry, "_loaded", False)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)
    sys.modules.pop("broken_algo", None)


def _dist_info(site: Path, line: str, module: str | None = None) -> None:
    """A distribution on sys.path whose only content is one gorl_bench.algorithms entry point."""
    info = site / "gorl_broken-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gorl-broken\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[gorl_bench.algorithms]\n{line}\n")
    if module:
        (site / "broken_algo.py").write_text(module)


@pytest.mark.parametrize("line, module, words", [
    ("broken = no_such_module:algorithm", None,
     ["entry point broken = no_such_module:algorithm", "package gorl-broken", "failed to load",
      "No module named 'no_such_module'"]),
    ("broken = broken_algo:algorithm", "algorithm = 3\n", ["broken_algo:algorithm", "is a int: name a"]),
    ("broken = broken_algo:algorithm", "def algorithm():\n    return 3\n",
     ["broken_algo:algorithm", "gave int, not a gorl.registry.Algorithm"]),
    ("other = broken_algo:algorithm",
     "from baselines.config import PPOConfig, PRESETS\nfrom baselines.ppo import train\nfrom gorl.registry import Algorithm\n"
     "def algorithm():\n    return Algorithm('broken', PPOConfig, PRESETS, train)\n",
     ["registers the name 'broken'", "must be named after the algorithm"]),
    ("ppo = broken_algo:algorithm",
     "from baselines.config import PPOConfig, PRESETS\nfrom gorl.registry import Algorithm\n"
     "def algorithm():\n    return Algorithm('ppo', PPOConfig, PRESETS, lambda cfg, run: None)\n",
     ["entry point ppo = broken_algo:algorithm", "'ppo' is already registered"]),
])
def test_bad_entry_point_is_named(tmp_path, monkeypatch, fresh_registry, line, module, words):
    _dist_info(tmp_path / "site", line, module)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for _ in range(2):  # and a second call raises again instead of returning a partial registry
        with pytest.raises(Exception) as e:
            registry.algorithms()
        for w in words:
            assert w in str(e.value)


def test_cli_names_a_broken_plugin_in_one_line(tmp_path):
    from conftest import cli
    _dist_info(tmp_path / "site", "broken = no_such_module:algorithm")
    out = cli("list", check=False, env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"),
                                                                       os.environ.get("PYTHONPATH", "")])})
    assert out.returncode == 2, out.stderr
    assert "entry point broken = no_such_module:algorithm" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_good_entry_point_registers(tmp_path, monkeypatch, fresh_registry):
    _dist_info(tmp_path / "site", "good_one = broken_algo:ALGO",
               "from baselines.config import PPOConfig, PRESETS\nfrom baselines.ppo import train\nfrom gorl.registry import Algorithm\n"
               "ALGO = Algorithm('good_one', PPOConfig, PRESETS, train, label='Good')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    algos = registry.algorithms()
    assert list(algos)[-1] == "good_one" and algos["good_one"].display == "Good"
    assert "good_one" in registry.colors()


# ------------------------------------------------------------------ the example package
@pytest.fixture
def example(monkeypatch):
    """The example module, imported from the source tree (no installation needed here)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("ppo_fixed_std", None)
    import ppo_fixed_std
    yield ppo_fixed_std
    sys.modules.pop("ppo_fixed_std", None)


@pytest.mark.parametrize("preset", ["paper", "small", "smoke"])
@pytest.mark.parametrize("task", ["cheetah-run", "finger-spin"])
def test_example_presets_are_ppos_plus_its_own(example, preset, task):
    from baselines.config import PRESETS, PPOConfig
    mine = build_config(example.FixedStdPPOConfig, example.PRESETS, preset, task)
    ppo = build_config(PPOConfig, PRESETS, preset, task)
    for f in dataclasses.fields(PPOConfig):
        assert getattr(mine, f.name) == getattr(ppo, f.name), f.name
    assert (mine.init_log_std, mine.log_std_min) == (0.0, -5.0)


def test_example_algorithm_and_policy(example):
    algo = example.algorithm()
    assert isinstance(algo, registry.Algorithm) and algo.name == "ppo_fixed_std"
    assert algo.presets_file.is_file() and algo.config_cls is example.FixedStdPPOConfig
    cfg = build_config(algo.config_cls, algo.presets_file, "smoke", "cartpole-balance", {"init_log_std": -0.5})
    torch.manual_seed(0)
    pol = example.make_agent(cfg, obs_dim=5, act_dim=2)
    obs = torch.randn(7, 5)
    mean, scale = pol.dist(obs)
    assert torch.allclose(scale, torch.full_like(scale, float(torch.tensor(-0.5).exp())))  # state-independent
    u, stored = pol.act(obs, obs)
    assert u.shape == (7, 2) and stored["u"].shape == (7, 2) and stored["logp"].shape == (7,)
    assert torch.equal(pol.act_eval(obs, obs), mean)
    assert pol.sample_actions(obs, obs, 3).shape == (7, 3, 2)
    # a minibatch (T, B, ...) at the sampling parameters: ratio 1, and log_std gets a gradient
    stored = {k: v.unsqueeze(0) for k, v in stored.items()}
    loss, info = pol.policy_loss(obs.unsqueeze(0), stored, torch.randn(1, 7))
    loss.backward()
    assert abs(float(info["approx_kl"])) < 1e-6 and float(info["clip_frac"]) == 0.0
    assert pol.log_std.grad is not None and pol.log_std.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="init_log_std"):
        build_config(algo.config_cls, algo.presets_file, "smoke", "cartpole-balance", {"init_log_std": -9.0})


# ------------------------------------------- a throwaway package through the smoke workflow
NEW = "throwaway_baseline"
NEW_LABEL = "Throwaway baseline"


def _make_package(src: Path) -> Path:
    """Copy the example outside the source tree under a new name (package, distribution,
    entry point, algorithm name and label), as a user would start their own baseline."""
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    (src / "ppo_fixed_std").rename(src / NEW)
    for f, old, new in [
        ("pyproject.toml", 'name = "gorl-ppo-fixed-std"', 'name = "gorl-throwaway-baseline"'),
        ("pyproject.toml", 'ppo_fixed_std = "ppo_fixed_std:algorithm"', f'{NEW} = "{NEW}:algorithm"'),
        ("pyproject.toml", 'packages = ["ppo_fixed_std"]', f'packages = ["{NEW}"]'),
        ("pyproject.toml", 'ppo_fixed_std = ["*.yaml"]', f'{NEW} = ["*.yaml"]'),
        (f"{NEW}/__init__.py", 'name="ppo_fixed_std"', f'name="{NEW}"'),
        (f"{NEW}/__init__.py", 'label="PPO (state-indep. std)"', f'label="{NEW_LABEL}"'),
    ]:
        text = (src / f).read_text()
        assert old in text, f"{old!r} not in {f}: update this test with the example"
        (src / f).write_text(text.replace(old, new))
    return src


def _install(src: Path, site: Path) -> str:
    """``pip install`` into a folder put on PYTHONPATH (offline: no index, no build isolation).

    Without setuptools (needed to build without isolation), register it the way pip would:
    the package plus a ``*.dist-info`` holding METADATA and entry_points.txt.
    """
    if importlib.util.find_spec("setuptools") is not None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "--disable-pip-version-check", "--target", str(site), str(src)],
                       check=True, capture_output=True, text=True, timeout=300)
        return "pip"
    site.mkdir()
    shutil.copytree(src / NEW, site / NEW)
    info = site / "gorl_throwaway_baseline-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gorl-throwaway-baseline\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[gorl_bench.algorithms]\n{NEW} = {NEW}:algorithm\n")
    return "dist-info"


def _env(site: Path) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
                MUJOCO_GL="disable", OMP_NUM_THREADS="1")


def test_throwaway_baseline_installed_trains_and_is_accepted(tmp_path):
    """The default suite's version of the workflow test below: everything but the workflow."""
    src = _make_package(tmp_path / "pkg")
    site = tmp_path / "site"
    _install(src, site)
    env = _env(site)
    listed = subprocess.run([sys.executable, "-m", "gorl", "list"], env=env, capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert NEW in listed.stdout, listed.stdout
    run_dir = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "gorl", "train", NEW, "cartpole-balance", "--seed", "0",
                            "--preset", "smoke", "--steps", "1920", "--out", str(run_dir), "--quiet"],
                           env=env, capture_output=True, text=True, cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    check = subprocess.run([sys.executable, "-m", "gorl", "check-run", str(run_dir)], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.strip().endswith(": ok"), check.stderr
    cfg = _write(tmp_path / "extension.yaml", f"""
        name: extension
        algorithms: [ppo, {NEW}]
        tasks: [cartpole-balance]
        seeds: [0]
        steps: 1920
        """)
    plan = subprocess.run([sys.executable, "-m", "gorl", "plan", str(cfg), "--json"], env=env,
                          capture_output=True, text=True, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    import json
    runs = json.loads(plan.stdout)["runs"]
    assert [r["algorithm"] for r in runs] == ["ppo", NEW] and runs[1]["family"] == "baseline"
    legend = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from analysis.style import resolve_styles
        print(resolve_styles(["ppo", "{NEW}"])["{NEW}"]["label"])
        """)], env=env, capture_output=True, text=True, cwd=ROOT)
    assert legend.returncode == 0 and legend.stdout.strip() == NEW_LABEL, legend.stderr


# -------------------------------------------- the walkthrough's non-PPO baseline, from the page
WALKTHROUGH = ROOT / "docs" / "adding-a-baseline.md"


def _section(title: str) -> str:
    text = WALKTHROUGH.read_text()
    start = text.index(f"## {title}")
    return text[start:text.index("\n## ", start + 1)]


def test_walkthrough_a2c_runs_as_written(tmp_path):
    """Files named by a first-line comment in the section's code blocks are written as they are;
    its `gorl-bench` commands run (as `python -m gorl`) with PYTHONPATH on that folder."""
    import re

    section = _section("A baseline that is not PPO, end to end (A2C)")
    files = {}
    for lang, body in re.findall(r"```(python|yaml)\n(.*?)```", section, re.S):
        first, _, rest = body.partition("\n")
        m = re.fullmatch(r"# (\S+\.(?:py|yaml))", first)
        assert m, f"a code block without its file name: {first!r}"
        files[m.group(1)] = body if lang == "yaml" else rest
    assert set(files) == {"a2c_demo.py", "a2c_demo.yaml", "a2c-vs-ppo.yaml"}
    home = tmp_path / "my-baselines"
    home.mkdir()
    for name, body in files.items():
        (home / name).write_text(body)
    commands = [ln[2:] for ln in re.findall(r"^\$ .*$", section, re.M)]
    assert any(c.startswith("snakemake ") for c in commands)
    env = dict(_env(home), HOME=str(tmp_path))
    ran = 0
    for command in commands:
        if not command.startswith("gorl-bench "):
            continue  # export (done by env), snakemake (the workflow: tests/test_workflow.py)
        args = command.split()[1:]
        args = [str(home / a) if a.endswith(".yaml") else a for a in args]
        out = subprocess.run([sys.executable, "-m", "gorl", *args], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
        assert out.returncode == 0, (command, out.stderr)
        ran += 1
        if args[0] == "check-run":
            assert out.stdout.strip() == "runs/a2c: ok"
        if args[0] == "plan":
            assert "a2c-vs-ppo: 4 runs" in out.stdout and "total 15,360 env steps" in out.stdout
    assert ran == 4


@pytest.mark.slow  # kept in the default suite by test_throwaway_baseline_installed_trains_and_is_accepted
def test_throwaway_baseline_through_the_smoke_workflow(tmp_path):  # and test_workflow.py's e2e workflow
    src = _make_package(tmp_path / "pkg")
    site = tmp_path / "site"
    how = _install(src, site)
    assert not (ROOT / "examples" / "ppo_fixed_std" / NEW).exists()  # nothing written into the source tree
    env = _env(site)

    listed = subprocess.run([sys.executable, "-m", "gorl", "list"], env=env, capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert NEW in listed.stdout, listed.stdout

    work = tmp_path / "work"
    work.mkdir()
    cfg = _write(work / "extension.yaml", """
        name: extension
        algorithms: [ppo]
        tasks: [cartpole-balance]
        seeds: [0]
        steps: 1920
        preset: smoke
        analysis: {bootstrap_reps: 20, curve_points: 3, profile_points: 5}
        """)
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
         "--cores", "2", "--configfile", str(cfg), "--config", f"algorithms=[ppo,{NEW}]", "--quiet"],
        env=env, capture_output=True, text=True, timeout=600, cwd=work)
    assert out.returncode == 0, f"snakemake ({how}) failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    res = work / "results" / "extension"

    # the run directory honours the contract
    run_dir = res / "runs" / NEW / "cartpole-balance" / "seed0"
    check = subprocess.run([sys.executable, "-m", "gorl", "check-run", str(run_dir)], env=env,
                           capture_output=True, text=True, cwd=work)
    assert check.returncode == 0 and check.stdout.strip().endswith(": ok"), check.stderr

    # the tidy table and the final scores
    tidy = pd.read_parquet(res / "tables" / "evals_tidy.parquet")
    assert set(tidy["algorithm"]) == {"ppo", NEW}
    mine = tidy[tidy["algorithm"] == NEW]
    assert list(mine["env_step"]) == [0, 1920] and (mine["status"] == "completed").all()
    assert set(pd.read_csv(res / "tables" / "evals_tidy.csv")["algorithm"]) == {"ppo", NEW}
    finals = pd.read_csv(res / "tables" / "final_scores.csv").set_index("algorithm")
    assert bool(finals.loc[NEW, "included"]) and finals.loc[NEW, "status"] == "completed"
    assert pd.read_csv(res / "tables" / "problem_runs.csv").empty

    # the figures exist; tables and legends use the registry's label
    for fig in ("learning_curves", "aggregate_metrics", "sample_efficiency", "action_distribution"):
        assert (res / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    from analysis.physics import physics
    table = (res / "tables" / "paper_comparison.md").read_text()
    assert f"| cartpole-balance | dm_control | {NEW_LABEL} |" in table
    assert f"- cartpole-balance: {physics('cartpole-balance')}" in table  # the physics, once, below
    assert NEW in set(pd.read_csv(res / "tables" / "aggregate_metrics.csv")["algorithm"])
    legend = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys, pandas as pd
        from analysis import figures
        from analysis.style import resolve_styles
        captured = []
        figures.save = lambda fig, stem: captured.append(fig)
        tidy = pd.read_parquet(sys.argv[1])
        figures.learning_curves(tidy, resolve_styles(["ppo", "{NEW}"]), "unused")
        print("|".join(t.get_text() for leg in captured[0].legends for t in leg.get_texts()))
        """), str(res / "tables" / "evals_tidy.parquet")],
        env=env, capture_output=True, text=True, cwd=ROOT)
    assert legend.returncode == 0, legend.stderr
    assert legend.stdout.strip().split("|") == [registry.get("ppo").display, NEW_LABEL]
