"""``compile_update``: the minibatch step through torch.compile (issue 20, item 2).

The compiled step must compute what the eager one does: same metrics and parameters after
whole updates, to float rounding (compiled kernels and the compiled Adam, whose bias corrections
are tensors rather than Python floats, round differently), the same random numbers drawn (the
generators end in the same state), no recompilation from one minibatch or update to the next, and
no graph break but the ones PyTorch makes on purpose (``loss.backward()``, and the two inside
``Optimizer.step``). The default test compiles with the 'aot_eager' backend (the graphs inductor
gets, run by eager kernels: seconds); the slow ones with inductor, as a run does (a CPU compiles
PPO's step in ~20 s with a warm inductor cache, ~90 s cold). tests/test_cuda.py holds the CUDA
graphs to the eager step on a GPU.
"""
import copy

import pytest
import torch
import torch._dynamo
import torch._inductor.config

from gorl import registry
from gorl.config import ConfigError, build_config
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run, resolve_device

TASK = "cartpole-balance"
PARAM_ATOL = 1e-5
"""Parameters after two updates (16 Adam steps of at most lr = 3e-4 each): within 1e-5 (measured
~2e-7 with aot_eager, ~7e-7 with inductor)."""
METRIC_TOL = dict(rel=1e-4, abs=1e-6)
"""Per-update metrics (means over minibatches): measured within 1e-5 relative."""


def trainer(algo: str, tmp_path, name: str, **over) -> OnPolicyTrainer:
    """``algo``'s trainer on TASK, smoke preset, built from torch seed 0 (GoRL: a stage-1 encoder
    through a random decoder, as tests/test_playground.py builds it)."""
    spec = registry.get(algo)
    if algo.startswith("gorl"):
        over = {"stage_steps": [1, 1], **over}
    cfg = build_config(spec.config_cls, spec.presets_file, "smoke", TASK, over)
    run = Run(algo=spec.name, task=TASK, seed=0, preset="smoke", dir=tmp_path / name, config={}, quiet=True,
              device=resolve_device(cfg.device))
    run.dir.mkdir(parents=True)
    torch.manual_seed(0)
    obs_dim, act_dim = run.env_dims()
    if algo.startswith("gorl"):
        from gorl.algorithm.gorl import make_decoder, make_encoder
        decoder = make_decoder(cfg, obs_dim, act_dim).to(run.device)  # as GoRL holds it (the encoder does not own it)
        decoder.obs_mean.normal_()
        return OnPolicyTrainer(cfg.stage_config(1), run, make_encoder(cfg, 1, obs_dim, act_dim, decoder))
    agent = spec.make_agent(cfg, obs_dim, act_dim)
    return OnPolicyTrainer(cfg, run, agent)


def rng_states() -> list[torch.Tensor]:
    return [torch.get_rng_state(), *([torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [])]


def compare(algo: str, tmp_path, backend: str, updates: int = 2, **over) -> None:
    """Eager and compiled trainers from the same weights update on the same batch ``updates``
    times from the same torch seed: the same metrics, parameters and generator states (CPU and,
    on a GPU, CUDA). On CUDA the compiled step must run as CUDA graphs: a graph that cudagraph
    trees would run without one raises (inductor's ``cudagraph_or_error``), naming the reason."""
    torch._dynamo.reset()  # this trainer's compilation is not a recompilation of an earlier test's
    torch._dynamo.utils.counters.clear()
    eager = trainer(algo, tmp_path, "eager", **over)
    compiled = trainer(algo, tmp_path, "compiled", compile_update=True, **over)
    compiled.compile_backend = backend
    for p, q in zip(eager.params, compiled.params):
        assert torch.equal(p, q)
    torch.manual_seed(1)
    batch = eager.collect()
    rows, rng = {}, {}
    for t in (eager, compiled):
        torch.manual_seed(2)
        # a recompilation (a guard that fails from one minibatch or update to the next) raises
        with torch._dynamo.config.patch(error_on_recompile=True), \
                torch._inductor.config.patch({"triton.cudagraph_or_error": True}):
            rows[t] = [t.update(copy.deepcopy(batch)) for _ in range(updates)]
        rng[t] = rng_states()
    assert all(torch.equal(a, b) for a, b in zip(rng[eager], rng[compiled])), \
        "the compiled step drew other random numbers"
    for a, b in zip(rows[eager], rows[compiled]):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], **METRIC_TOL), k
    for (name, p), q in zip([*eager.agent.named_parameters(), *eager.critic.named_parameters()], compiled.params):
        torch.testing.assert_close(q, p, rtol=0, atol=PARAM_ATOL, msg=lambda m: f"{name}: {m}")
    # the only graph breaks: backward and the two that Optimizer.step makes on purpose
    breaks = torch._dynamo.utils.counters["graph_break"]
    unexpected = [r for r in breaks if "backward" not in r and "graph_break()" not in r]
    assert not unexpected, unexpected


def test_compiled_step_matches_the_eager_one(tmp_path):
    """PPO, with the global-norm clip on (GoRL's encoders clip), graphs by aot_eager."""
    compare("ppo", tmp_path, "aot_eager", max_grad_norm=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion"])
def test_inductor_step_matches_the_eager_one(algo, tmp_path):
    """Every algorithm through inductor, the code a CPU run with compile_update compiles."""
    compare(algo, tmp_path, "inductor")


def compare_graphs(algo: str, tmp_path, backend: str = "aot_eager", updates: int = 2, **over) -> None:
    """``cuda_graph: epoch`` against 'step' from the same weights: ``updates`` updates on distinct
    batches (each later one copied into the epoch's static tensors) from the same torch seed give the
    same metrics, parameters and generator states: bit for bit off CUDA, where both run the same
    kernels; to float rounding on CUDA, where the epoch must have been captured (not fallen back)."""
    torch._dynamo.reset()
    step = trainer(algo, tmp_path, "step", **over)
    epoch = trainer(algo, tmp_path, "epoch", cuda_graph="epoch", **over)
    step.compile_backend = epoch.compile_backend = backend
    torch.manual_seed(1)
    batches = [step.collect() for _ in range(updates)]
    rows, rng = {}, {}
    for t in (step, epoch):
        torch.manual_seed(2)
        rows[t] = [t.update(copy.deepcopy(b)) for b in batches]
        rng[t] = rng_states()
    assert all(torch.equal(a, b) for a, b in zip(rng[step], rng[epoch])), "the epoch drew other random numbers"
    cuda = step.device.type == "cuda"
    if cuda:
        assert epoch.epoch_captured, "the epoch ran uncaptured (the run's log says why)"
    assert rows[step][0] != rows[step][1], "the batches should differ"
    for a, b in zip(rows[step], rows[epoch]):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == (pytest.approx(a[k], **METRIC_TOL) if cuda else a[k]), k
    for p, q in zip(step.params, epoch.params):
        torch.testing.assert_close(q, p, rtol=0, atol=PARAM_ATOL if cuda else 0)


@pytest.mark.parametrize("algo, compile_update", [("ppo", False), ("fpo", False), ("ppo", True)])
def test_the_epoch_graph_updates_as_the_steps_do(algo, compile_update, tmp_path):
    """``cuda_graph: epoch`` off CUDA runs the epoch code a GPU captures (its static tensors, the
    permutation copied in, the sums zeroed per update): PPO, FPO (noise drawn inside the step),
    and PPO's step compiled (aot_eager)."""
    compare_graphs(algo, tmp_path, compile_update=compile_update)


def test_cuda_graph_is_step_or_epoch():
    spec = registry.get("ppo")
    assert build_config(spec.config_cls, spec.presets_file, "smoke", TASK).cuda_graph == "step"
    with pytest.raises(ConfigError, match="cuda_graph must be one of \\('step', 'epoch'\\), got 'minibatch'"):
        build_config(spec.config_cls, spec.presets_file, "smoke", TASK, {"cuda_graph": "minibatch"})


def test_provenance_says_what_one_cuda_graph_held():
    from gorl.provenance import compile_update
    assert compile_update(True, "cuda", "step")["torch_compile_mode"] == "reduce-overhead (CUDA graphs)"
    epoch = compile_update(True, "cuda", "epoch")  # inductor's kernels, captured by the epoch's graph
    assert epoch["torch_compile_mode"] == "default" and epoch["cuda_graph"]["graphs"].startswith("an epoch per graph")
    assert compile_update(False, "cuda", "step")["cuda_graph"] == {"setting": "step", "graphs": "none"}
    assert compile_update(True, "cpu", "epoch")["cuda_graph"] == {"setting": "epoch", "graphs": "none"}
    assert compile_update(False, "cpu")["cuda_graph"] == {"setting": None, "graphs": None}  # a run without the key


def test_compile_update_is_a_boolean():
    spec = registry.get("ppo")
    assert build_config(spec.config_cls, spec.presets_file, "smoke", TASK).compile_update is False
    with pytest.raises(ConfigError, match="compile_update: expected true/false, got 'maybe'"):
        build_config(spec.config_cls, spec.presets_file, "smoke", TASK, {"compile_update": "maybe"})


@pytest.mark.slow
def test_resume_after_kill_is_exact_with_compile_update(tmp_path):
    """A run killed after two iterations and resumed (a new process compiles again, and Adam's
    step counts come back as the capturable tensors they were) ends as the uninterrupted one."""
    from conftest import cli, kill_after_iterations, strip_wall
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["train", "ppo", TASK, "--seed", 5, "--steps", 9600, "--preset", "smoke", "--quiet",
            "--set", "compile_update=true", "--set", "num_evals=3"]
    cli(*args, "--out", ref)
    kill_after_iterations(args, killed)
    out = cli(*args, "--out", killed)
    assert "resumed" in out.stdout
    assert strip_wall(killed / "evals.csv") == strip_wall(ref / "evals.csv")
    import pandas as pd
    losses = [pd.read_csv(d / "metrics.csv").drop(columns=["sps", "rollout_s", "update_s"]) for d in (ref, killed)]
    pd.testing.assert_frame_equal(*losses, check_exact=True)  # every update's metrics, bit for bit


def compare_fits(kind: str, backend: str, device: str = "cpu") -> None:
    """GoRL's decoder fit (the release's step schedule) eager and with ``compiled`` (what
    ``compile_update`` sets) from the same seed: the same validations to float rounding, the same
    kept parameters, no recompilation from one step to the next and no graph break but backward's
    and the optimizer's. Diffusion with the pairwise loss (the sampler inside the loss)."""
    import dataclasses

    import numpy as np

    from gorl.algorithm.config import DecoderFitConfig
    from gorl.algorithm.decoder import fit_decoder
    rng = np.random.default_rng(0)
    obs, acts = rng.normal(size=(900, 5)).astype(np.float32), rng.normal(size=(900, 3)).astype(np.float32)
    cfg = DecoderFitConfig(hidden=[32, 32], steps=4, learning_rate=1e-3, batch_size=64, max_epochs=None,
                           patience=None, mc_samples=4, max_samples=10**6, val_fraction=0.1, max_val_batches=2,
                           schedule="steps", train_steps=30, eval_interval=10, split="episode", target_clip=3.0,
                           diffusion_form="release" if kind == "diffusion" else "v1",
                           pairwise_weight=1e-3 if kind == "diffusion" else 0.0)
    data = {"episode": np.repeat(np.arange(9), 100), "latent": rng.normal(size=(900, 3)).astype(np.float32)}
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    fits = []
    for compiled in (False, True):
        with torch._dynamo.config.patch(error_on_recompile=True), \
                torch._inductor.config.patch({"triton.cudagraph_or_error": True}):
            fits.append(fit_decoder(kind, obs, acts, dataclasses.replace(cfg, compiled=compiled), 3,
                                    torch.device(device), compile_backend=backend, **data))
    (eager, h_eager), (comp, h_comp) = fits
    assert [r["step"] for r in h_comp] == [r["step"] for r in h_eager] == [0, 1, 10, 20, 30]
    for a, b in zip(h_eager, h_comp):
        for k in ("train_loss", "val_loss", "val_endpoint_mse"):
            assert b[k] == pytest.approx(a[k], **METRIC_TOL), (a["step"], k)
    for (name, p), q in zip(eager.state_dict().items(), comp.state_dict().values()):
        torch.testing.assert_close(q, p, rtol=0, atol=PARAM_ATOL, msg=lambda m: f"{name}: {m}")
    breaks = torch._dynamo.utils.counters["graph_break"]
    assert not [r for r in breaks if "backward" not in r and "graph_break()" not in r], breaks


@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_compiled_decoder_fit_matches_the_eager_one(kind):
    """The decoder fit's step, graphs by aot_eager (tests/test_cuda.py: inductor with CUDA graphs)."""
    compare_fits(kind, "aot_eager")


@pytest.mark.slow
def test_inductor_decoder_fit_matches_the_eager_one():
    compare_fits("fm", "inductor")


def test_a_process_compiles_more_steps_than_dynamos_recompile_limit():
    """Each trainer and decoder fit compiles its own step (new parameters, a new optimizer), and
    dynamo counts the cache entries of freed optimizers against its recompile_limit (8 per code
    object; Adam.step's is shared by every optimizer of the process). Nine compiled fits in one
    process all compile: without the raised limit the ninth fell back to eager (on a CPU failing in
    capturable Adam; on a GPU silently slower)."""
    import numpy as np

    from gorl.algorithm.config import DecoderFitConfig
    from gorl.algorithm.decoder import fit_decoder
    rng = np.random.default_rng(0)
    obs, acts = rng.normal(size=(200, 3)).astype(np.float32), rng.normal(size=(200, 2)).astype(np.float32)
    cfg = DecoderFitConfig(hidden=[8], steps=2, learning_rate=1e-3, batch_size=32, max_epochs=None, patience=None,
                           mc_samples=1, max_samples=10**6, val_fraction=0.1, max_val_batches=1, schedule="steps",
                           train_steps=2, eval_interval=2, compiled=True)
    torch._dynamo.reset()
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        for seed in range(9):
            fit_decoder("fm", obs, acts, cfg, seed, torch.device("cpu"), compile_backend="aot_eager")
