"""The training entry point: bad input, determinism, resume after kill -9, divergence."""
import json

import pytest

from conftest import cli, cli_here, kill_after_iterations, strip_wall

SMOKE = ["--preset", "smoke", "--quiet"]


@pytest.mark.parametrize("args, culprit", [
    (["ppo", "cheetah-rnu"], "cheetah-rnu"),
    (["ppoo", "cheetah-run"], "ppoo"),
    (["ppo", "cheetah-run", "--preset", "huge"], "huge"),
    (["ppo", "cheetah-run", "--set", "learning_rat=1e-3"], "learning_rat"),
    (["ppo", "cheetah-run", "--set", "learning_rate=fast"], "learning_rate"),
    (["ppo", "cheetah-run", "--steps", "0"], "--steps"),
    (["ppo", "cheetah-run", "--steps", "10"], "total_steps"),
    (["ppo", "cheetah-run", "--steps", "1e1"], "total_steps=10 is less than one iteration"),
    (["ppo", "cheetah-run", "--set", "num_envs=7"], "num_envs"),
    (["ppo", "gym:NoSuchEnv-v9"], "NoSuchEnv-v9"),
    (["ppo", "cheetah-run", "--import", "no_such_module_xyz"], "no_such_module_xyz"),
    (["ppo", "cheetah-run", "--set", "eval_schedule=brax"], "eval_schedule"),
    (["ppo", "cheetah-run", "--set", "reset_mode=first"], "reset_mode"),
    (["ppo", "cheetah-run", "--set", "compile_update=maybe"], "compile_update: expected true/false, got 'maybe'"),
    (["gorl_fm", "cheetah-run", "--set", "decoder_filter_unit=blocks"], "decoder_filter_unit"),
    (["gorl_fm", "cheetah-run", "--set", "decoder_collection=long"], "decoder_collection"),
    (["ppo", "cheetah-run", "--set", "device=cuda:x"], "device"),
    (["ppo", "cheetah-run", "--set", "device=cuda:99"], "device"),
    (["ppo", "cheetah-run", "--set", "rollout=scan"], "rollout=scan needs a playground: task (this one: 'cheetah-run')"),
])
def test_bad_input_names_the_culprit(tmp_path, capsys, args, culprit):
    """``gorl-bench train``'s own ``main`` in this process (each case is refused before anything
    trains, so a fresh process would only add its ~2-4 s of imports); the two tests below go
    through a fresh ``python -m gorl`` process, exit code and stderr included."""
    from gorl.cli import main
    assert main(["train", *SMOKE, *args, "--out", str(tmp_path / "run")]) == 2
    out = capsys.readouterr()
    assert culprit in out.err and out.err.count("\n") == 1, out.err  # one clear line
    assert not out.out
    assert not (tmp_path / "run").exists()  # refused before --out was made


def test_steps_are_written_as_budgets_are(capsys):
    """``--steps`` takes a budget as the presets and ``--set total_steps=`` take it (1e6, 1_000_000);
    a number that is not whole, or no number, is named before anything runs."""
    from gorl.cli import build_parser

    def steps(value):
        return build_parser().parse_args(["train", "ppo", "cheetah-run", "--out", "x", "--steps", value]).steps
    assert steps("1e6") == steps("1_000_000") == 1_000_000 and steps("4000") == 4000
    for bad in ("1500.5", "abc", "inf"):
        with pytest.raises(SystemExit):
            steps(bad)
        assert f"argument --steps: expected a whole number of env steps (4000, 1_000_000, 1e6), got {bad!r}" \
            in capsys.readouterr().err


def test_a_gpu_this_machine_lacks_is_one_line_before_anything_is_written(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device=cuda is valid here")
    out = cli("train", *SMOKE, "ppo", "cheetah-run", "--set", "device=cuda", "--out", tmp_path / "run", check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "device: 'cuda'" in out.stderr and "sees no GPU" in out.stderr
    assert not (tmp_path / "run").exists()


def test_unwritable_out(tmp_path):
    (tmp_path / "file").write_text("x")
    out = cli("train", "ppo", "cartpole-balance", "--out", tmp_path / "file" / "run", *SMOKE, check=False)
    assert out.returncode == 2 and "--out" in out.stderr


def _evals(d):
    return (d / "evals.csv").read_text().splitlines()


def test_eval_schedule_switch(tmp_path):
    """eval_schedule=reference (spec 1.4) evaluates before the update of iterations 0, 4, 9 of
    10 and never after the last; the smoke preset keeps linspace_inclusive (0, 5, 10)."""
    spi = 60  # 1 minibatch x 2 segments x 30 steps per iteration: ten iterations cost little
    small = ["--set", "num_envs=2", "--set", "num_minibatches=1", "--set", "batch_size=2", "--set", "eval_episodes=1"]
    steps = {}
    for schedule in ("reference", None):
        d = tmp_path / str(schedule)
        extra = ["--set", f"eval_schedule={schedule}"] if schedule else []
        cli_here("train", "ppo", "cartpole-balance", "--seed", 0, "--steps", 10 * spi, "--out", d, *SMOKE, *small,
                 *extra)
        steps[schedule] = [int(line.split(",")[0]) for line in _evals(d)[1:]]
        assert cli_here("check-run", d).stdout.strip().endswith(": ok")
    assert steps["reference"] == [0, 4 * spi, 9 * spi]
    assert steps[None] == [0, 5 * spi, 10 * spi]


def test_same_seed_identical_and_completed_run_protected(tmp_path):
    """The same command twice gives the same run: once in a fresh process, once in this test
    process, which has trained and imported other things before (a run depends on nothing else)."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli("train", "ppo", "cartpole-balance", "--seed", 3, "--steps", 5760, "--out", a, *SMOKE)
    cli_here("train", "ppo", "cartpole-balance", "--seed", 3, "--steps", 5760, "--out", b, *SMOKE)
    assert strip_wall(a / "evals.csv") == strip_wall(b / "evals.csv")
    for f in ("config.yaml", "evals.csv", "metrics.csv", "probes.npz", "provenance.json", "checkpoint.pt",
              "status.json"):
        assert (a / f).exists(), f
    status = json.loads((a / "status.json").read_text())
    assert status["status"] == "completed" and status["env_steps"] == 5760
    prov = json.loads((a / "provenance.json").read_text())
    assert prov["seed"] == 3 and prov["versions"]["torch"] and prov["device"] == "cpu"
    assert prov["rollout"] == {"setting": "auto", "used": "step"}  # a dm_control task steps once per step
    before = (a / "evals.csv").read_bytes()
    again = cli_here("train", "ppo", "cartpole-balance", "--seed", 3, "--steps", 5760, "--out", a, *SMOKE,
                     check=False)
    assert again.returncode == 2 and "completed" in again.stderr and "--force" in again.stderr
    assert (a / "evals.csv").read_bytes() == before


@pytest.mark.parametrize("extra", [[], ["--set", "reset_mode=fixed_initial"]], ids=["random", "fixed_initial"])
def test_resume_after_kill_matches_uninterrupted(tmp_path, extra):
    """(fixed_initial: 1440 steps per env cross the 1000-step limit after the resume, so the
    resumed run's envs must return to the same first states). The reference runs in this test
    process, the killed run and its resume each in a fresh one."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "ppo", "cartpole-balance", "--seed", 5, "--steps", 11520, *SMOKE, *extra]
    cli_here(*args, "--out", ref)
    kill_after_iterations(args, killed, timeout=120)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout and "other code" not in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")
    first, resume = json.loads((killed / "provenance.json").read_text())["attempts"]  # the start, the resume
    assert first["env_step"] == 0 and 0 < resume["env_step"] < 11520 and resume["env_step"] % 1920 == 0
    assert first["git_commit"] == resume["git_commit"] and first["versions"] == resume["versions"]
    assert first["started"] <= resume["started"]
    assert len(json.loads((ref / "provenance.json").read_text())["attempts"]) == 1


def _auto_trainer(d, **over):
    """PPO smoke on cartpole-balance with checkpoint_every auto, built as the CLI builds it."""
    import torch

    from baselines.ppo import make_agent
    from gorl import registry
    from gorl.config import build_config
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run

    algo = registry.get("ppo")
    cfg = build_config(algo.config_cls, algo.presets_file, "smoke", "cartpole-balance",
                       {"checkpoint_every": "auto", **over})
    run = Run(algo="ppo", task="cartpole-balance", seed=2, preset="smoke", dir=d, config={}, quiet=True)
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(run.seed)
    return OnPolicyTrainer(cfg, run, make_agent(cfg, *run.env_dims()))


def test_resume_under_checkpoint_every_auto_repeats_an_unsaved_evaluation_exactly(tmp_path):
    """checkpoint_every auto gives an evaluation no checkpoint of its own. A run that dies after the
    evaluation at iteration 3 (of 0, 3, 6) and before its next checkpoint (here: the checkpoint
    itself fails, as a kill -9 in that window) resumes from an older checkpoint and evaluates again,
    sampling (eval_deterministic false: the evaluation draws from torch's generator), at the same
    point of every random stream: the same evaluations and metrics as a run never stopped."""
    over = {"total_steps": 6 * 1920, "eval_deterministic": False}
    ref = _auto_trainer(tmp_path / "ref", **over)
    ref.train()

    class Killed(Exception):
        pass
    a = _auto_trainer(tmp_path / "a", **over)

    def checkpoint():
        if len(a.run.records.evals) == 2:  # the evaluation at iteration 3 is in evals.csv, not saved
            raise Killed
        a.run.save_checkpoint(a.state_dict())
    with pytest.raises(Killed):
        a.train(checkpoint=checkpoint)
    assert (tmp_path / "a" / "evals.csv").read_text().count("\n") == 3  # header + 2 evaluations
    b = _auto_trainer(tmp_path / "a", **over)
    state = b.run.load_checkpoint()
    assert len(b.run.records.evals) == 1  # the resume starts before the evaluation at iteration 3
    b.load_state_dict(state)
    b.train()

    def strip(rows, timing):  # as JSON: NaN (no training episode ended yet) equals NaN
        return [json.dumps({k: v for k, v in r.items() if k not in timing}, sort_keys=True) for r in rows]
    assert strip(b.run.records.evals, {"wall_time"}) == strip(ref.run.records.evals, {"wall_time"})
    assert len(ref.run.records.evals) == 3 and "return_mean_deterministic" in ref.run.records.evals[0]
    timing = {"sps", "rollout_s", "update_s"}
    assert strip(b.run.records.metrics, timing) == strip(ref.run.records.metrics, timing)


def test_resume_after_the_last_evaluation_keeps_it(tmp_path, ppo_smoke_run):
    """A run killed between its final evaluation and finishing does not evaluate again."""
    import shutil

    from conftest import PPO_SMOKE
    d = tmp_path / "r"
    shutil.copytree(ppo_smoke_run, d)  # the shared finished run (conftest), copied
    args = [*PPO_SMOKE, "--out", d]
    before = (d / "evals.csv").read_bytes()  # wall_time column: a repeated evaluation rewrites it
    (d / "status.json").unlink()  # pretend it was killed before it could finish
    out = cli_here(*args)
    assert "resumed" in out.stdout
    assert (d / "evals.csv").read_bytes() == before
    assert (d / "status.json").exists()


def test_a_resume_under_other_code_says_so_and_provenance_lists_both(tmp_path, ppo_smoke_run, monkeypatch):
    """A run resumed after a `git pull` or a package upgrade mixes two codes: the resume says which
    differ, in one warning line, and provenance.json lists every attempt with its code."""
    import shutil

    from conftest import PPO_SMOKE
    from gorl import provenance
    d = tmp_path / "r"
    shutil.copytree(ppo_smoke_run, d)
    first = json.loads((d / "provenance.json").read_text())["attempts"]
    (d / "status.json").unlink()  # as a stop before the end leaves it
    (d / "provenance.json").unlink()
    versions = dict(provenance.versions(), torch="9.9.9")
    monkeypatch.setattr(provenance, "git_commit", lambda: "feedbeef")
    monkeypatch.setattr(provenance, "versions", lambda: versions)
    out = cli_here(*PPO_SMOKE, "--out", d)
    [line] = [ln for ln in out.stdout.splitlines() if "other code" in ln]
    assert line.startswith("warning:") and f"git_commit {first[0]['git_commit']} -> feedbeef" in line
    assert f"torch {first[0]['versions']['torch']} -> 9.9.9" in line and "env step 3,840" in line
    attempts = json.loads((d / "provenance.json").read_text())["attempts"]
    assert attempts[:1] == first and attempts[1]["git_commit"] == "feedbeef"
    assert attempts[1]["versions"]["torch"] == "9.9.9" and attempts[1]["env_step"] == 3840
    shown = cli_here("show", d).stdout.splitlines()
    assert shown[-1].startswith(f"note: {d} was resumed under other code (git_commit ") and "2 attempts" in shown[-1]
    summary, = json.loads(cli_here("show", d, "--json").stdout)
    assert summary["attempts"] == 2 and "torch" in summary["code_changes"][-1]
    assert not any(ln.startswith("note:") for ln in cli_here("show", ppo_smoke_run).stdout.splitlines())


def test_a_resume_on_another_kind_of_device_says_so(tmp_path, ppo_smoke_run):
    """A `device: auto` run started on a GPU node and resumed on a CPU one (or the reverse) mixes
    two devices' numbers: the resume says so in one warning line, `show` in a note. The previous
    attempt's device is written into the checkpoint, as a GPU attempt would have left it."""
    import shutil

    import torch

    from conftest import PPO_SMOKE
    d = tmp_path / "r"
    shutil.copytree(ppo_smoke_run, d)
    (d / "status.json").unlink()  # as a stop before the end leaves it
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        st = torch.load(d / name, weights_only=True)
        st["attempts"][-1]["device"] = "cuda:0"
        torch.save(st, d / name)
    out = cli_here(*PPO_SMOKE, "--out", d)
    [line] = [ln for ln in out.stdout.splitlines() if "device" in ln and "previous attempt" in ln]
    assert line.startswith("warning: this resume runs on another kind of device") and "device cuda:0 -> cpu" in line
    assert "other code" not in out.stdout
    attempts = json.loads((d / "provenance.json").read_text())["attempts"]
    assert [a["device"] for a in attempts] == ["cuda:0", "cpu"]
    shown = cli_here("show", d).stdout.splitlines()
    assert shown[-1] == (f"note: {d} was resumed on another kind of device (device cuda:0 -> cpu); its "
                         f"provenance.json lists the 2 attempts")
    summary, = json.loads(cli_here("show", d, "--json").stdout)
    assert summary["device_changes"] == ["device cuda:0 -> cpu"] and summary["code_changes"] == []


def test_changed_config_refuses_to_resume(tmp_path):
    d = tmp_path / "r"
    cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, *SMOKE)
    (d / "status.json").unlink()  # pretend it was interrupted
    out = cli_here("train", "ppo", "cartpole-balance", "--steps", 1920, "--out", d, "--set", "clip_eps=0.3", *SMOKE,
                   check=False)
    assert out.returncode == 2 and "clip_eps" in out.stderr


def test_divergence_is_data(tmp_path):
    d = tmp_path / "nan"
    out = cli_here("train", "ppo", "gym:Test/NaNAfter-v0", "--import", "toy_envs", "--steps", 19200, "--out", d,
                   *SMOKE)
    assert out.returncode == 0
    status = json.loads((d / "status.json").read_text())
    assert status["status"] == "diverged" and "non-finite" in status["reason"]
    assert len(_evals(d)) >= 2  # the evaluation before divergence is kept


def test_checkpoint_every_auto_keeps_checkpoints_under_five_percent(tmp_path, capsys):
    """checkpoint_every auto: a checkpoint every iteration until the process's second one ends, then
    every k, k = ceil(checkpoint s / (5% x iteration s)) as measured (here a checkpoint made slow, as
    a large one is), and after the last evaluation; said in the log, kept in the checkpoint and
    restored with it."""
    import re
    import time

    import torch

    from baselines.ppo import make_agent
    from gorl import registry
    from gorl.config import build_config
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run

    algo = registry.get("ppo")
    cfg = build_config(algo.config_cls, algo.presets_file, "smoke", "cartpole-balance",
                       {"checkpoint_every": "auto", "total_steps": 8 * 1920, "num_evals": 2})

    def trainer():
        run = Run(algo="ppo", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={}, quiet=True)
        return OnPolicyTrainer(cfg, run, make_agent(cfg, *run.env_dims()))
    t, saved = trainer(), []

    def slow_checkpoint():
        saved.append(t.iteration)
        t.run.save_checkpoint(t.state_dict())
        time.sleep(0.5)
    t.train(checkpoint=slow_checkpoint)
    k = t.checkpoint_every
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("checkpoint_every auto")]
    took, iteration = map(float, re.search(r"takes (\S+) s, an iteration (\S+) s", line).groups())
    share = took / iteration  # printed to 3 digits: 1% either way
    assert k >= 2 and f"every {k} iteration(s)" in line and share / k < 0.05 * 1.01 < share / (k - 1) * 1.02, line
    # evaluations at 0 and 8: the first gets no checkpoint of its own (a resume repeats it), the last does
    assert saved == [1, *(i for i in range(2, 9) if i % k == 0 or i == 8), 8]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["checkpoint_every"] == k
    resumed = trainer()
    resumed.load_state_dict(resumed.run.load_checkpoint())
    assert resumed.checkpoint_every == k


def test_git_commit_tells_uncommitted_edits_apart(tmp_path):
    """provenance's git_commit (each attempt of a run records it): the commit, and for a checkout
    with uncommitted edits a suffix that names the edits, so two attempts under different edits differ."""
    import subprocess

    from gorl.provenance import git_commit

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git_commit(tmp_path)
    assert len(head) == 40 and "dirty" not in head
    (tmp_path / "a.py").write_text("x = 2\n")
    first = git_commit(tmp_path)
    assert first.startswith(f"{head}-dirty-") and git_commit(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 3\n")
    assert git_commit(tmp_path).startswith(f"{head}-dirty-") and git_commit(tmp_path) != first
    (tmp_path / "untracked.py").write_text("")  # untracked files are not the run's code
    (tmp_path / "a.py").write_text("x = 1\n")
    assert git_commit(tmp_path) == head
