"""Device correctness (issue 20): what a CPU can check runs everywhere; the rest needs CUDA and
is skipped without it (benchmarks/gpu_paper_scale.py runs this file on a GPU machine).

- checkpoints are read onto the CPU: every restored object must land on the run's device
  (the normaliser is not an nn.Module: its load_state_dict moves tensors itself);
- the checkpoint holds every generator's state (CUDA's included: rollout noise and minibatch
  permutations are drawn there on a GPU), so a resume is exact on CUDA too;
- ``cuda:k``: JAX runs on the same device as torch (tests/test_playground.py checks the choice);
- ``compile_update``: the minibatch step and the decoder fit's step as CUDA graphs compute what
  the eager steps do.
"""
import json

import numpy as np
import pytest
import torch

from conftest import cli, kill_after_iterations, strip_wall
from gorl.core.normalizer import RunningNormalizer
from gorl.core.run import rng_state, set_rng_state

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")
two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")


def devices_of(*objs) -> set[torch.device]:
    """Every device holding a tensor of ``objs`` (modules, optimisers, normalisers, nested dicts/lists)."""
    found: set[torch.device] = set()

    def walk(x):
        if isinstance(x, torch.Tensor):
            found.add(x.device)
        elif isinstance(x, torch.nn.Module):
            walk(list(x.parameters()) + list(x.buffers()))
        elif isinstance(x, torch.optim.Optimizer):
            walk(x.state_dict()["state"])
        elif isinstance(x, RunningNormalizer):
            walk([x.mean, x.var_sum, x.std])
        elif isinstance(x, dict):
            [walk(v) for v in x.values()]
        elif isinstance(x, (list, tuple)):
            [walk(v) for v in x]
    for o in objs:
        walk(o)
    return found


def test_normaliser_loads_onto_its_own_device():
    """A CPU state loaded into a normaliser elsewhere (the meta device stands in for a GPU) stays there."""
    src = RunningNormalizer(3)
    src.update(torch.randn(10, 3))
    dst = RunningNormalizer(3).to("meta")
    dst.load_state_dict(src.state_dict())
    assert devices_of(dst) == {torch.device("meta")}
    back = RunningNormalizer(3)
    back.load_state_dict(src.state_dict())
    assert torch.equal(back.std, src.std) and back.count == src.count


def test_checkpoint_holds_every_generator():
    st = rng_state()
    assert set(st) == {"torch", "cuda", "numpy"}
    assert (st["cuda"] is not None) == (torch.cuda.is_available() and torch.cuda.is_initialized())
    a = (torch.rand(3), np.random.rand(3))
    set_rng_state(st)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    set_rng_state(st["torch"])  # a checkpoint of an earlier version: torch's CPU state alone
    assert torch.equal(torch.rand(3), a[0])


def test_trainer_checkpoint_holds_the_rng_states(tmp_path):

    from gorl import registry
    from gorl.config import build_config
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run
    spec = registry.get("ppo")
    cfg = build_config(spec.config_cls, spec.presets_file, "smoke", "cartpole-balance", {})
    run = Run(algo="ppo", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={}, quiet=True)
    agent = spec.make_agent(cfg, *run.env_dims())
    st = OnPolicyTrainer(cfg, run, agent).state_dict()
    assert set(st["rng"]) == {"torch", "cuda", "numpy"}


# -- CUDA only -------------------------------------------------------------------------------------
@cuda
@pytest.mark.parametrize("task", ["playground:CartpoleBalance", "cartpole-balance"])
def test_resume_after_kill_is_exact_on_cuda(task, tmp_path):
    pytest.importorskip("mujoco_playground") if task.startswith("playground:") else None
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "ppo", task, "--seed", 5, "--steps", 9600, "--preset", "smoke", "--quiet",
            "--set", "device=cuda", "--set", "eval_episodes=8", "--set", "num_evals=3"]
    cli(*args, "--out", ref)
    memory = json.loads((ref / "provenance.json").read_text())["memory"]
    assert memory["peak_cuda_mib"] > 0 and memory["peak_rss_mib"] > 100  # torch's pool on the GPU
    kill_after_iterations(args, killed)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")


@cuda
def test_gorl_resume_across_a_stage_on_cuda(tmp_path):
    """Carried encoder and statistics, the best encoder's normaliser: restored onto the GPU (the
    decoder-data collection used to mix devices after a resume)."""
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "gorl_fm", "cartpole-balance", "--seed", 2, "--steps", 7680, "--preset", "smoke", "--quiet",
            "--set", "device=cuda", "--set", "fresh_encoder_each_stage=false", "--set", "num_evals=2"]
    first = cli(*args, "--out", ref)
    # the eager update on CUDA is named once per run, not once per stage's trainer
    assert first.stdout.count("note: the update runs eagerly on CUDA") == 1, first.stdout
    kill_after_iterations(args, killed, iterations=3)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")


@cuda
def test_gorl_restored_state_is_on_the_run_device(tmp_path):
    from gorl import registry
    from gorl.algorithm.gorl import GoRL
    from gorl.config import build_config
    from gorl.core.run import Run, torch_bytes
    spec = registry.get("gorl_fm")
    cfg = build_config(spec.config_cls, spec.presets_file, "smoke", "cartpole-balance",
                       {"device": "cuda", "fresh_encoder_each_stage": False})
    dev = torch.device("cuda", torch.cuda.current_device())
    run = Run(algo="gorl_fm", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={},
              device=dev, quiet=True)
    g = GoRL(cfg, run)
    t = g.make_trainer(0)
    g._track_best(t, {"return_mean": 1.0, "env_step": 0})
    g.carry = {"agent": t.agent.state_dict(), "critic": t.critic.state_dict(), "normalizer": t.normalizer.state_dict()}
    import io
    st = torch.load(io.BytesIO(torch_bytes(g.state_dict(t))), map_location="cpu", weights_only=False)
    g2 = GoRL(cfg, run)
    trainer_state = g2.load_state_dict(st)
    t2 = g2.make_trainer(1)
    t2.load_state_dict(trainer_state)
    assert devices_of(t2.agent, t2.critic, t2.optimizer, t2.normalizer, t2._episode_return, g2.decoder) == {dev}
    norm = RunningNormalizer(t2.obs_dim).to(dev)
    norm.load_state_dict(g2.best["normalizer"])  # as refit_decoder restores the best encoder's statistics
    assert devices_of(norm) == {dev}


@cuda
def test_playground_on_the_current_cuda_device_shares_memory():
    pytest.importorskip("mujoco_playground")
    from gorl.envs.playground import PlaygroundEnvs
    envs = PlaygroundEnvs("playground:CartpoleBalance", list(range(8)), "cuda")
    assert envs._jax_device.platform == "gpu"
    obs = envs.step(torch.zeros(8, 1, device="cuda"))[0]
    assert obs.device == envs.device


@two_gpus
def test_playground_on_cuda_1_runs_jax_on_gpu_1():
    pytest.importorskip("mujoco_playground")
    from gorl.envs.playground import PlaygroundEnvs
    envs = PlaygroundEnvs("playground:CartpoleBalance", list(range(8)), "cuda:1")
    assert getattr(envs._jax_device, "local_hardware_id", envs._jax_device.id) == 1
    obs, reward, *_ = envs.step(torch.zeros(8, 1, device="cuda:1"))
    assert obs.device == torch.device("cuda", 1) and reward.device == torch.device("cuda", 1)


@cuda
def test_scan_rollout_matches_the_per_step_path_on_cuda(tmp_path):
    pytest.importorskip("mujoco_playground")
    import test_playground
    step = test_playground._trainer("ppo", "step", tmp_path, device="cuda")
    scan = test_playground._trainer("ppo", "scan", tmp_path, device="cuda")
    scan.agent.load_state_dict(step.agent.state_dict())
    scan.critic.load_state_dict(step.critic.state_dict())
    torch.manual_seed(3)
    a = step.collect()
    torch.manual_seed(3)
    b = scan.collect()
    for k in ("obs", "reward"):
        torch.testing.assert_close(b[k][:100], a[k][:100], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(b["stored"]["x"][:100], a["stored"]["x"][:100], rtol=1e-3, atol=1e-3)


@cuda
@pytest.mark.parametrize("algo, eval_mode", [("ppo", None), ("fpo", "stochastic"), ("dppo", "zero_noise"),
                                             ("gorl_fm-bounded", None)])
def test_evaluation_through_the_scan_matches_the_per_step_path_on_cuda(algo, eval_mode, tmp_path):
    """tests/test_playground.py's evaluation check on CUDA (the draws from CUDA's generator;
    gorl_fm-bounded: GoRL's humanoid act rule); fp32 matmuls on both sides: TF32's rounding,
    amplified over 1000 steps, is not the subject."""
    pytest.importorskip("mujoco_playground")
    import test_playground
    algo, _, bounded = algo.partition("-")
    test_playground.compare_evaluations(algo, eval_mode, tmp_path, device="cuda", matmul_precision="fp32",
                                        **(test_playground.BOUNDED if bounded else {}))


@cuda
def test_teacher_data_through_the_scan_match_the_per_step_loop_on_cuda(tmp_path, monkeypatch):
    """tests/test_playground.py's teacher-data check on CUDA: the scans that run past the loop's
    last step give CUDA's generator back, as on the CPU."""
    pytest.importorskip("mujoco_playground")
    import test_playground
    test_playground.compare_teacher_data(300, tmp_path, monkeypatch, device="cuda")


@cuda
@pytest.mark.parametrize("algo, max_grad_norm", [("ppo", None), ("ppo", 0.5), ("fpo", None), ("dppo", None),
                                                 ("gorl_fm", 0.5)])
def test_compiled_update_matches_the_eager_one_on_cuda(algo, max_grad_norm, tmp_path):
    """``compile_update`` on CUDA: torch.compile with CUDA graphs (cudagraph trees, a capturable
    Adam) over updates (smoke) gives the eager step's metrics and parameters to float rounding and
    draws the same random numbers (CPU and CUDA generators end equal); every graph runs as a CUDA
    graph (a skip raises with its reason); PPO without and with the global-norm clip (an in-place
    scaling of the backward graph's gradients), and each other loss config/paper-gpu.yaml compiles
    (GoRL-FM's encoder with its clip; GoRL-Diffusion's encoder step is the same graph). fp32
    matmuls on both sides: the comparison is about the compilation, not TF32."""
    import test_compile_update
    over = {} if max_grad_norm is None else {"max_grad_norm": max_grad_norm}
    test_compile_update.compare(algo, tmp_path, "inductor", device="cuda", matmul_precision="fp32", **over)


@cuda
@pytest.mark.parametrize("algo, compile_update", [("ppo", True), ("ppo", False), ("fpo", True), ("gorl_fm", True)])
def test_the_epoch_graph_updates_as_the_steps_do_on_cuda(algo, compile_update, tmp_path):
    """``cuda_graph: epoch`` on CUDA: each epoch captured once as one CUDA graph (the compiled step's
    kernels, or the eager ones) and replayed over two updates on distinct batches gives what the
    steps give ('step': cudagraph trees when compiled, eager kernels when not) to float rounding, with
    the same random numbers (FPO draws noise inside the step); the capture must not fall back. fp32
    matmuls on both sides."""
    import test_compile_update
    over = {"max_grad_norm": 0.5} if algo.startswith("gorl") else {}
    test_compile_update.compare_graphs(algo, tmp_path, "inductor", device="cuda", matmul_precision="fp32",
                                       compile_update=compile_update, **over)


@cuda
@pytest.mark.parametrize("val_redraw", [False, True])
def test_the_release_fit_draws_the_same_rows_ahead_on_cuda(val_redraw):
    """The decoder fit's rows drawn ahead and copied once per validation interval (what a CUDA fit
    does) give the fit that one draw and copy per step gives, bit for bit."""
    from test_gorl import fit_steps_both_ways
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cuda"), val_redraw)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


@cuda
@pytest.mark.parametrize("backend, pairwise", [(None, False), ("inductor", False), (None, True)])
def test_the_release_fit_as_captured_runs_of_steps_is_the_same_fit_on_cuda(backend, pairwise):
    """The fit's runs of eval_interval steps as captured CUDA graphs (warm-up, capture, replays)
    give the fit that steps one by one gives (the same kernels on the same numbers: equal to float
    rounding at most), and the capture does not fall back (it would say so in the log); eager, and
    compiled by inductor (the steps: cudagraph trees; the runs: inductor's kernels captured); and
    with the release diffusion's pairwise term (the sampler under autograd inside the graph)."""
    from test_gorl import fit_steps_both_ways
    said = []
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cuda"), False, captured=True, log=said.append,
                                             backend=backend, pairwise=pairwise)
    assert not said, said
    assert [r["step"] for r in h1] == [r["step"] for r in h2]
    for a, b in zip(h1, h2):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-7), k
    for a, b in zip(p1, p2):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


@cuda
@pytest.mark.parametrize("backend", [None, "inductor"])
def test_the_epochs_fit_as_one_captured_loop_per_epoch_is_the_same_fit_on_cuda(backend):
    """The epochs schedule (v1, the release's humanoid profile) with each epoch's steps as one
    captured CUDA graph (epoch 0 warms it up, 1 captures it, 2-4 replay it) gives the fit that steps
    one by one gives, to float rounding at most, and the capture does not fall back."""
    from test_gorl import fit_steps_both_ways
    said = []
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cuda"), False, captured=True, log=said.append,
                                             backend=backend, schedule="epochs")
    assert not said, said
    assert [r["epoch"] for r in h1] == [r["epoch"] for r in h2] == [0, 1, 2, 3, 4]
    for a, b in zip(h1, h2):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-7), k
    for a, b in zip(p1, p2):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


@cuda
@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_compiled_decoder_fit_matches_the_eager_one_on_cuda(kind):
    """``compile_update``'s decoder fit on CUDA: the step as CUDA graphs (a skip raises, with its
    reason) gives the eager fit's validations and parameters to float rounding; fp32 matmuls on
    both sides (the comparison is about the compilation, not TF32)."""
    import test_compile_update
    from gorl.provenance import set_matmul_precision
    before = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
    set_matmul_precision("fp32", "cuda")
    try:
        test_compile_update.compare_fits(kind, "inductor", device="cuda")
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cuda.matmul.allow_tf32 = before[1]
