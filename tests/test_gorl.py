"""GoRL (spec 6): identity decoders, latent PPO = Gaussian PPO through the identity,
the decoder fit, stage bookkeeping, and resume across a stage boundary."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from conftest import after_stage1_decoder, cli, cli_here, kill_when
from gorl.algorithm.config import DecoderFitConfig, GoRLConfig
from gorl.algorithm.decoder import Decoder, fit_decoder
from gorl.algorithm.gorl import make_encoder
from gorl.config import ConfigError, build_config
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.generative import cosine_alpha_bar, ddim_sample, linear_alpha_bar
from gorl.registry import get


def test_identity_decoders():
    torch.manual_seed(0)
    obs, z = torch.randn(64, 5), torch.randn(64, 3)
    fm = Decoder.identity("fm", 5, 3, [16, 16])
    assert torch.equal(fm(obs, z), z)  # zero velocity: the Euler chain returns z exactly
    diff = Decoder.identity("diffusion", 5, 3, [16, 16])
    scale = 1.0 / linear_alpha_bar(10)[-1].sqrt()
    assert abs(float(scale) - 1.052) < 1e-3  # the v1 stage-0 diffusion decoder's factor (spec 6.5)
    torch.testing.assert_close(diff(obs, z), z * scale, rtol=1e-5, atol=1e-6)
    # the zero-network shortcut is the same arithmetic as evaluating the all-zero network
    for kind, dec in (("fm", fm), ("diffusion", diff)):
        dec.identity_init = False
        assert all(float(p.abs().max()) == 0 for p in dec.net.parameters())
        slow = dec(obs, z)
        dec.identity_init = True
        assert torch.equal(slow, dec(obs, z)), kind


def _ddim_plain_loop(net, obs_norm, x, alpha_bar):
    """Spec 6.5 written out: x0_hat = (x - sqrt(1 - abar_i) eps_hat) / sqrt(abar_i),
    x <- sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat, abar_prev = 1 at index 0."""
    T = alpha_bar.shape[0]
    ab = alpha_bar.double()
    for i in range(T - 1, 0, -1):
        eps_hat = net(obs_norm, x, torch.full(x.shape[:-1], i / T))
        x0_hat = (x - (1 - ab[i]).sqrt() * eps_hat) / ab[i].sqrt()
        prev = torch.tensor(1.0, dtype=torch.float64) if i == 1 else ab[i - 1]
        x = (prev.sqrt() * x0_hat + (1 - prev).sqrt() * eps_hat).float()
    return x


def test_ddim_sampler_matches_the_plain_loop_and_its_cache_follows_the_parameters():
    torch.manual_seed(0)
    dec = Decoder("diffusion", 5, 3, [32, 32, 32])
    for p in dec.net.parameters():
        p.normal_(0, 0.3)
    obs, z = torch.randn(64, 5), torch.randn(64, 3)
    with torch.no_grad():
        want = _ddim_plain_loop(dec.net, obs, z, dec.alpha_bar)
    torch.testing.assert_close(dec(obs, z), want, rtol=1e-4, atol=1e-5)
    with torch.no_grad():  # an in-place parameter change invalidates the cached constants
        dec.net.net[0].weight.mul_(0.5)
        want = _ddim_plain_loop(dec.net, obs, z, dec.alpha_bar)
    torch.testing.assert_close(dec(obs, z), want, rtol=1e-4, atol=1e-5)
    with torch.enable_grad():  # also right when a graph is recorded (no cache)
        torch.testing.assert_close(ddim_sample(dec.net, obs, z, dec.alpha_bar), want, rtol=1e-4, atol=1e-5)


# The v1 code's switches at the smoke geometry (the smoke preset follows the release): the tests
# below that exercise v1's machinery (its collectors, filters, epoch fit, schedules) use them.
V1 = {"stage_steps": [1, 1], "decoder_collection": "episodes", "collect_steps": 2000, "collect_envs": 8,
      "collect_episodes": None, "stage0_decoder": "zero_network", "decoder_fit_schedule": "epochs",
      "decoder_train_steps": None, "decoder_max_epochs": 3, "decoder_patience": 2, "decoder_eval_interval": None,
      "decoder_max_val_batches": 50, "decoder_split": "transition", "decoder_target_clip": None,
      "decoder_zero_init_last": False, "decoder_hidden": [64, 64, 64, 64], "decoder_output_scale": 1.0,
      "decoder_pairwise_weight": 0.0, "diffusion_schedule": "cosine", "diffusion_parameterization": "epsilon",
      "seed_scheme": "v1", "best_ties": "later", "obs_norm_mode": "legacy", "obs_stats_timing": "pre_update",
      "encoder_init": "fresh", "max_grad_norm": 0.5, "later_stages.max_grad_norm": 1.0,
      "later_stages.clip_eps": 0.3}


def _set(values: dict) -> list[str]:
    """``--set`` arguments for ``values``."""
    import json
    out = []
    for k, v in values.items():
        v = json.dumps(v) if isinstance(v, (list, bool)) or v is None else v
        out += ["--set", f"{k}={v}"]
    return out


def _cfg(**kw) -> GoRLConfig:
    """gorl_fm at the smoke geometry with v1's switches."""
    return build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", "cartpole-balance", {**V1, **kw})


def _smoke(algo="gorl_fm", **kw) -> GoRLConfig:
    """The smoke preset as it is (the release's switches)."""
    return build_config(get(algo).config_cls, get(algo).presets_file, "smoke", "cartpole-balance", kw)


def test_encoder_through_identity_is_gaussian_ppo():
    """With the identity FM decoder, acting and every loss term equal a plain Gaussian
    policy's (same weights, same batch): the ratio is over z and a = z."""
    cfg = _cfg(latent_reg_coef=0.0)
    dec = Decoder.identity("fm", 5, 2, cfg.decoder_hidden)
    torch.manual_seed(1)
    enc = make_encoder(cfg, 0, 5, 2, dec)
    ppo = GaussianPolicy(5, 2, cfg.actor_hidden, clip_eps=0.15, entropy_coef=cfg.entropy_coef,
                         entropy_tanh_correction=False, scale_cap=cfg.scale_cap)
    ppo.load_state_dict(enc.state_dict())
    obs = torch.randn(30, 8, 5)
    torch.manual_seed(2)
    a_enc, st_enc = enc.act(obs[0], obs[0])
    torch.manual_seed(2)
    a_ppo, st_ppo = ppo.act(obs[0], obs[0])
    assert torch.equal(a_enc, a_ppo) and torch.equal(st_enc["x"], a_enc)
    stored = {"x": torch.randn(30, 8, 2), "logp": torch.randn(30, 8)}
    adv = torch.randn(30, 8)
    (l1, i1), (l2, i2) = enc.policy_loss(obs, stored, adv), ppo.policy_loss(obs, stored, adv)
    assert torch.equal(l1, l2)
    assert all(torch.equal(torch.as_tensor(i1[k]), torch.as_tensor(i2[k])) for k in i2)
    # the latent regulariser of stage 1 is the only difference
    enc1 = make_encoder(_cfg(), 1, 5, 2, dec)
    enc1.load_state_dict(enc.state_dict())
    l3, i3 = enc1.policy_loss(obs, stored, adv)
    mean, scale = enc.actor(obs)
    reg = mean.pow(2).mean() + scale.pow(2).mean()
    torch.testing.assert_close(i3["latent_reg"], reg)


@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_decoder_fit_learns_a_bimodal_target(kind):
    """Supervised fit from N(0, I) to actions at -1.5 or +1.5: loss falls and decoded
    prior samples land near both modes, not in between."""
    rng = np.random.default_rng(0)
    n = 6000
    obs = rng.normal(size=(n, 2)).astype(np.float32)
    acts = (np.where(rng.random(n) < 0.5, -1.5, 1.5) + 0.05 * rng.normal(size=n)).astype(np.float32)[:, None]
    cfg = DecoderFitConfig(hidden=[64, 64], steps=10, learning_rate=3e-3, batch_size=512, max_epochs=25,
                           patience=25, mc_samples=8, max_samples=10**7, val_fraction=0.1, max_val_batches=5)
    dec, hist = fit_decoder(kind, obs, acts, cfg, seed=0, device=torch.device("cpu"))
    assert hist[-1]["val_loss"] < 0.7 * hist[0]["val_loss"], hist
    torch.manual_seed(0)
    a = dec(torch.zeros(4000, 2), torch.randn(4000, 1)).squeeze(1).numpy()
    near = lambda c: np.mean(np.abs(a - c) < 0.5)  # noqa: E731
    print(kind, "mass near -1.5:", near(-1.5), "near +1.5:", near(1.5), "in (-0.5, 0.5):", near(0.0))
    assert near(-1.5) > 0.3 and near(1.5) > 0.3 and near(0.0) < 0.1


def fit_steps_both_ways(device: torch.device, val_redraw: bool, captured: bool = False,
                        log=lambda msg: None, backend: str | None = None, schedule: str = "steps",
                        pairwise: bool = False) -> tuple[list, list]:
    """The release's step schedule run twice from the same seeds, the noise from a generator of
    its own (as on a GPU): rows drawn once per step, and drawn ahead up to each validation
    (``captured``: with each run of eval_interval steps as one captured loop, its noise drawn
    ahead too, ``cuda_graph: epoch``). ``schedule`` 'epochs': the epochs schedule (9 steps per epoch,
    5 epochs) run as it is, then with each epoch as one captured loop (``captured``). ``backend``:
    the step compiled by it (each run compiles anew and must not recompile from one step to the
    next). ``pairwise``: each row's latent too, and the release diffusion's pairwise term in the
    loss (the decoder's sampler run from the row's latent, under autograd). Returns both runs'
    (history, final parameters)."""
    import dataclasses

    import torch._dynamo
    from gorl.algorithm.decoder import _fit_epochs, _fit_steps, train_step
    from gorl.core import compiled
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.normal(size=(700, 3)).astype(np.float32), device=device)
    acts = torch.as_tensor(rng.normal(size=(700, 2)).astype(np.float32), device=device)
    lat = torch.as_tensor(rng.normal(size=(700, 2)).astype(np.float32), device=device) if pairwise else None
    cfg = DecoderFitConfig(hidden=[16, 16], steps=4, learning_rate=1e-3, batch_size=64, max_epochs=1, patience=1,
                           mc_samples=2, max_samples=10**6, val_fraction=0.1, max_val_batches=2, schedule="steps",
                           train_steps=23, eval_interval=5, checkpoint_metric="val_endpoint_mse",
                           val_redraw=val_redraw)
    if schedule == "epochs":  # patience above max_epochs: every epoch runs
        cfg = dataclasses.replace(cfg, schedule="epochs", train_steps=None, eval_interval=None, max_epochs=5,
                                  patience=10, checkpoint_metric="val_loss")
    out = []
    for ahead in (False, True):
        torch.manual_seed(0)
        dec = Decoder("fm", 3, 2, cfg.hidden, cfg.steps).to(device)
        for p in dec.net.parameters():  # (a decoder is frozen but while fitted)
            p.requires_grad_(True)
        loop = captured and ahead
        opt = torch.optim.Adam(dec.net.parameters(), lr=cfg.learning_rate,
                               **compiled.adam_options(device, backend is not None, loop))
        gen, gen_dev = torch.Generator().manual_seed(1), torch.Generator(device=device).manual_seed(2)
        def loss(o, a, z, eps, t):
            out = dec.loss(o, a, eps, t)
            return out if z is None else out + 1e-3 * (dec.decode_normalized(o, z) - a).pow(2).mean()
        torch._dynamo.reset()
        step = train_step(list(dec.net.parameters()), opt, loss, device, backend, graphs=not loop)
        data = ((obs[:600], acts[:600], None if lat is None else lat[:600]),
                (obs[600:], acts[600:], None if lat is None else lat[600:]))
        with torch._dynamo.config.patch(error_on_recompile=True):
            if schedule == "epochs":
                hist = _fit_epochs(dec, step, loss, *data, dataclasses.replace(cfg, captured=loop), gen, gen_dev,
                                   device, log=log)
            else:
                hist = _fit_steps(dec, step, loss, *data, dataclasses.replace(cfg, captured=loop), gen, gen_dev,
                                  device, draw_ahead=ahead, log=log)
        for row in hist:
            del row["wall_s"]  # the only column that differs
        out.append((hist, [p.detach().cpu().clone() for p in dec.parameters()]))
    return out


@pytest.mark.parametrize("val_redraw", [False, True])
def test_the_release_fit_draws_the_same_rows_ahead_as_step_by_step(val_redraw):
    """On a GPU the rows of the steps up to the next validation are drawn at once (one copy to the
    device, not one per step); they are the same numbers in the same order, also where each
    validation draws new rows (val_redraw): the same fit, bit for bit."""
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cpu"), val_redraw)
    assert [r["step"] for r in h1] == [0, 1, 5, 10, 15, 20, 23]
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


@pytest.mark.parametrize("val_redraw, backend, pairwise", [(False, None, False), (True, None, False),
                                                           (False, "aot_eager", False), (False, None, True)])
def test_the_release_fit_as_captured_runs_of_steps_is_the_same_fit(val_redraw, backend, pairwise):
    """``cuda_graph: epoch``: each run of eval_interval steps between two validations is one captured
    loop on a GPU (steps 6-10 warm it up, 11-15 capture it, 16-20 replay it; 1, 2-5 and 21-23 step
    as before), its rows and noise drawn ahead into the tensors it reads. Off CUDA the same loop
    runs uncaptured: the same fit as step by step, bit for bit; also with the step compiled (its
    static noise passed as views, one per step: no recompilation), and with the release diffusion's
    pairwise term (each step's rows' latents gathered in the loop)."""
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cpu"), val_redraw, captured=True, backend=backend,
                                             pairwise=pairwise)
    assert [r["step"] for r in h1] == [0, 1, 5, 10, 15, 20, 23]
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


@pytest.mark.parametrize("backend", [None, "aot_eager"])
def test_the_epochs_fit_as_one_captured_loop_per_epoch_is_the_same_fit(backend):
    """``cuda_graph: epoch`` on the epochs schedule (v1, the release's humanoid profile): each epoch's
    steps are one captured loop on a GPU (epoch 0 warms it up, epoch 1 captures it, later epochs
    replay it), its rows and noise drawn ahead into the tensors it reads, the epoch's losses summed
    in the graph. Off CUDA the same loop runs uncaptured: the same fit as step by step, bit for bit
    (also with the step compiled: no recompilation)."""
    (h1, p1), (h2, p2) = fit_steps_both_ways(torch.device("cpu"), False, captured=True, backend=backend,
                                             schedule="epochs")
    assert [r["epoch"] for r in h1] == [0, 1, 2, 3, 4] and h1[-1]["steps"] == 5 * (600 // 64)
    assert h1 == h2
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


def test_a_captured_epochs_fit_needs_a_noise_generator_of_its_own():
    """The captured epochs loop keeps the step schedule's precondition, a noise generator of its
    own (``fit_decoder`` captures only on CUDA, where it has one): given one generator for rows and
    noise it refuses. (Unlike the step schedule's, its numbers would not change: an epoch's rows
    are drawn before its noise.)"""
    import dataclasses

    from gorl.algorithm.decoder import _fit_epochs
    cfg = DecoderFitConfig(hidden=[8], steps=2, learning_rate=1e-3, batch_size=8, max_epochs=1, patience=1,
                           mc_samples=1, max_samples=100, val_fraction=0.5, max_val_batches=1, captured=True)
    dec, gen = Decoder("fm", 1, 1, [8], 2), torch.Generator().manual_seed(0)
    data = (torch.zeros(16, 1), torch.zeros(16, 1), None)
    with pytest.raises(ValueError, match="generator of its own"):
        _fit_epochs(dec, None, None, data, data, dataclasses.replace(cfg), gen, gen, torch.device("cpu"))


def _sampler_gain_for_gaussian_target(kind: str, s: float, steps: int = 10) -> float:
    """d(action)/dz / s of the decoder's sampler run on the EXACT field of a 1-D target N(m, s^2).

    Between Gaussians the flow-matching velocity E[eps - a | x_t] and the diffusion
    E[eps | x_i] are affine in x, and so is every Euler/DDIM step: the decoder is an affine
    map of z. Its gain is s (1 here) only for infinitely many steps; with 10 it is smaller."""
    g = 1.0
    if kind == "fm":  # x_t = t eps + (1 - t) a; Euler from t = 1 down to dt
        for k in range(steps):
            t = 1.0 - k / steps
            g -= (t - (1 - t) * s * s) / (t * t + (1 - t) ** 2 * s * s) * g / steps
        return g / s
    ab = [float(v) for v in cosine_alpha_bar(steps)]
    for i in range(steps - 1, 0, -1):  # DDIM as in gorl.generative.ddim_sample
        e = (1 - ab[i]) ** 0.5 / (ab[i] * s * s + 1 - ab[i]) * g
        x0 = (g - (1 - ab[i]) ** 0.5 * e) / ab[i] ** 0.5
        prev = 1.0 if i == 1 else ab[i - 1]
        g = prev ** 0.5 * x0 + (1 - prev) ** 0.5 * e
    return g / s


@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_decoder_fitted_to_gaussian_actions_is_affine_and_contracts_as_its_sampler(kind):
    """Why GoRL v1 keeps a Gaussian policy unless its decoder data are filtered: fitted to
    Gaussian actions (the output of a Gaussian encoder through an affine decoder), the decoder
    is again affine in z, so the next stage's policy is again Gaussian per state (up to the fit error, see
    tests/test_bimodality.py for where that error makes two peaks). Its spread
    is s times the 10-step sampler's gain (~0.82 for s = 0.3, not 1), which the fit matches."""
    rng = np.random.default_rng(0)
    n, m, s = 6000, 0.4, 0.3
    obs = rng.normal(size=(n, 2)).astype(np.float32)
    acts = (m + s * rng.normal(size=n)).astype(np.float32)[:, None]
    cfg = DecoderFitConfig(hidden=[64, 64], steps=10, learning_rate=1e-3, batch_size=256, max_epochs=20,
                           patience=20, mc_samples=8, max_samples=10**7, val_fraction=0.1, max_val_batches=5)
    dec, _ = fit_decoder(kind, obs, acts, cfg, seed=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    z = torch.randn(4000, 1)
    a = dec(torch.as_tensor(obs[:4000]), z).squeeze(1).numpy()
    slope, intercept = np.polyfit(z[:, 0].numpy(), a, 1)
    residual = a - (slope * z[:, 0].numpy() + intercept)
    expected = _sampler_gain_for_gaussian_target(kind, s)
    print(kind, f"gain/s fitted {slope / s:.3f}, exact field {expected:.3f}; residual std {residual.std():.4f}")
    assert 0.75 < expected < 0.9
    assert residual.std() < 0.15 * slope  # affine in z (R^2 > 0.97)
    assert abs(slope / s - expected) < 0.08 and abs(intercept - m) < 0.06


def test_stage_bookkeeping():
    cfg = build_config(GoRLConfig, get("gorl_fm").presets_file, "paper", "cheetah-run", {})
    assert cfg.stage_iterations() == [61, 61, 30, 30]  # spec 1.3: 182 iterations = 178,913,280 steps
    spi = cfg.steps_per_iteration
    offsets = cfg.stage_offsets()
    assert offsets[0] == 0
    for k in range(1, 4):  # contiguous: no gaps, no overlaps
        assert offsets[k] == offsets[k - 1] + cfg.stage_iterations()[k - 1] * spi
    assert offsets[-1] + 30 * spi == 178_913_280
    assert [cfg.stage_config(k).max_grad_norm for k in range(4)] == [0.5] * 4  # the release
    v1 = build_config(GoRLConfig, get("gorl_fm").presets_file, "paper-v1", "cheetah-run", {})
    assert [v1.stage_config(k).max_grad_norm for k in range(4)] == [0.5, 1.0, 1.0, 1.0]  # spec 6.2
    assert [v1.stage_config(k).learning_rate for k in range(4)] == [1e-3] * 4
    assert cfg.stage_config(3).total_steps == 30 * spi
    with pytest.raises(ConfigError, match="stage 1"):
        _cfg(total_steps=3000, stage_steps=[10, 1])


def _evals(d):
    with open(d / "evals.csv") as f:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]


@pytest.mark.parametrize("algo", ["gorl_fm", "gorl_diffusion"])
def test_smoke_run_one_axis_and_artifacts(tmp_path, algo):
    out = tmp_path / algo
    cli_here("train", algo, "cartpole-balance", "--preset", "smoke", "--steps", "8000", "--seed", "0",
             "--quiet", "--out", out)
    cfg = _smoke(algo, total_steps=8000)
    rows = _evals(out)
    stages = [int(r["stage"]) for r in rows]
    assert stages == sorted(stages) and set(stages) == {0, 1, 2, 3}
    for k, off in enumerate(cfg.stage_offsets()):
        steps = [int(r["env_step"]) for r in rows if int(r["stage"]) == k]
        assert steps[0] == off and steps[-1] == off + cfg.stage_iterations()[k] * cfg.steps_per_iteration
    assert (out / "stages/stage0/decoder.pt").exists() and (out / "stages/stage1/decoder.pt").exists()
    assert (out / "stages/stage0/dataset_summary.json").exists()
    assert (out / "stages/stage0/decoder_fit.csv").exists() and (out / "stages/stage0/encoder_best.pt").exists()
    probes = np.load(out / "probes.npz")
    assert probes["actions"].shape[0] == len(rows) and np.abs(probes["actions"]).max() <= 1
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")


def test_a_stage_releases_its_trainer_and_envs_before_the_decoder_data_are_collected(tmp_path, monkeypatch):
    """The stage loop closes each stage's trainer (its envs, its hooks) when the stage ends: with
    Python's cycle collector off, no trainer of an ended stage is alive when the decoder data are
    collected or the next stage builds its envs (2048 per trainer in `paper`; a sharded set's
    worker processes). GoRL's evaluation hooks point back at the trainer, a cycle that otherwise
    kept it, and its envs, until the collector ran."""
    import gc
    import weakref

    from gorl.algorithm.gorl import GoRL
    made, alive_at = [], []
    make, refit = GoRL.make_trainer, GoRL.refit_decoder

    def make_trainer(self, k):
        alive_at.append(("stage", k, [i for i, r in enumerate(made) if r() is not None]))
        trainer = make(self, k)
        made.append(weakref.ref(trainer))
        made.append(weakref.ref(trainer.envs))
        return trainer

    def refit_decoder(self, k):
        alive_at.append(("refit", k, [i for i, r in enumerate(made) if r() is not None]))
        return refit(self, k)
    monkeypatch.setattr(GoRL, "make_trainer", make_trainer)
    monkeypatch.setattr(GoRL, "refit_decoder", refit_decoder)
    # torch imports dynamo at a process's first Adam, inside the first trainer's __init__, and
    # torch.fx's wrap() leaves a frame cycle that holds that stack (freed by the cycle collector,
    # which is off below): imported here first, as any earlier test in this process may have
    import torch._dynamo  # noqa: F401
    gc.collect()
    gc.disable()
    try:
        cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--seed", "0",
                 "--quiet", "--set", "stage_steps=[1, 1]", "--set", "num_evals=2", "--out", tmp_path / "run")
    finally:
        gc.enable()
    assert alive_at == [("stage", 0, []), ("refit", 0, []), ("stage", 1, [])]


def test_reference_eval_schedule_per_stage(tmp_path):
    """eval_schedule=reference (spec 1.4): each stage evaluates at int(linspace(0, n - 1, k))
    before the update, never at the stage's end, and the best encoder is one of those."""
    out = tmp_path / "run"
    cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "11520", "--seed", "0",
             "--quiet", "--out", out, "--set", "eval_schedule=reference", "--set", "num_evals=3", *_set(V1))
    cfg = _cfg(total_steps=11520, eval_schedule="reference", num_evals=3)
    spi = cfg.steps_per_iteration
    assert cfg.stage_iterations() == [3, 3]
    rows = _evals(out)
    for k, off in enumerate(cfg.stage_offsets()):
        steps = [int(r["env_step"]) for r in rows if int(r["stage"]) == k]
        assert steps == [off, off + spi, off + 2 * spi]  # int(linspace(0, 2, 3)); never off + 3 * spi
    best = torch.load(out / "stages/stage0/encoder_best.pt", weights_only=False)
    assert best["env_step"] in {int(r["env_step"]) for r in rows if int(r["stage"]) == 0}
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")


def test_all_reference_switches_together(tmp_path):
    """The paper preset's protocol switches on a smoke budget: fixed initial states, the
    reference collector (no episode ends in 250 steps per env), its 1000-row-block filter and
    the reference evaluation schedule; the run completes and passes check-run."""
    import json
    out = tmp_path / "run"
    cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "8000", "--seed", "0", "--quiet",
             "--out", out, *_set(V1), "--set", "reset_mode=fixed_initial", "--set", "decoder_collection=reference",
             "--set", "eval_schedule=reference", "--set", "decoder_data_filter=percentile",
             "--set", "decoder_filter_unit=reference_blocks")
    summary = json.loads((out / "stages/stage0/dataset_summary.json").read_text())
    assert summary["collection"] == "reference" and summary["reset_mode"] == "fixed_initial"
    assert summary["episodes_finished"] == 0 and summary["rows"] == 1000  # the better of 2 blocks
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")


# slow: smoke is the release's GoRL now, so tests/test_release_switches.py::
# test_release_run_passes_check_run_and_resumes_after_kill kills the same kind of run at the same
# point (after the stage-1 decoder) in the default suite
@pytest.mark.slow
def test_resume_across_stage_boundary(tmp_path):
    args = ["train", "gorl_diffusion", "cartpole-balance", "--preset", "smoke", "--steps", "8000", "--seed",
            "3", "--quiet"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    cli(*args, "--out", ref)
    kill_when(args, killed, after_stage1_decoder, timeout=300)
    cli(*args, "--out", killed)
    assert _evals(killed) == _evals(ref)
    a, b = np.load(ref / "probes.npz"), np.load(killed / "probes.npz")
    assert np.array_equal(a["actions"], b["actions"])


def test_episode_filters_select_by_return():
    from gorl.algorithm.episode_filter import rows_of_episodes, select_episodes
    rng = np.random.default_rng(0)
    returns = np.arange(10.0)  # episode i has return i
    assert select_episodes(returns, "none", rng=rng).tolist() == list(range(10))
    assert select_episodes(returns, "percentile", quantile=0.7, rng=rng).tolist() == [7, 8, 9]  # >= 6.3
    assert select_episodes(returns, "min_return", min_return=8.0, rng=rng).tolist() == [8, 9]
    hybrid = select_episodes(returns, "hybrid", quantile=0.5, high_quality_ratio=0.8, rng=rng)
    assert hybrid.shape == (10,) and (hybrid[:8] >= 5).all()  # 8 from the top half (with repeats: 5 < 8)
    assert len(set(hybrid[8:].tolist())) == 2
    with pytest.raises(ValueError, match="decoder_data_filter"):
        select_episodes(returns, "top", rng=rng)
    # rows: episode 1 picked twice, episode 0 not, -1 (unfinished) never
    rows = rows_of_episodes(np.array([0, 1, 1, -1, 2]), np.array([1, 2, 1]), 3)
    assert rows.tolist() == [1, 1, 2, 2, 4]


def test_collection_filter_keeps_the_high_return_episodes(tmp_path):
    """On the two-mode bandit (one-step episodes) the 'percentile' filter keeps exactly the
    top half of the same collection's actions by reward, which lie near both optima."""
    from gorl.core.normalizer import RunningNormalizer
    from gorl.core.run import Run
    from gorl.algorithm.gorl import collect_decoder_data
    from gorl.envs.toy import TwoModes
    task = "gym:GoRLBench/TwoModes-v0"
    out = {}
    for mode in ("none", "percentile"):
        cfg = build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", task,
                           {**V1, "decoder_data_filter": mode, "decoder_filter_quantile": 0.5})
        run = Run(algo="gorl_fm", task=task, seed=0, preset="smoke", dir=tmp_path, config={})
        torch.manual_seed(0)
        enc = make_encoder(cfg, 0, 1, 1, Decoder.identity("fm", 1, 1, cfg.decoder_hidden))
        with torch.no_grad():
            enc.actor.net[-1].bias.copy_(torch.tensor([0.0, 2.0]))  # broad latent: N(0, ~2^2)
        _, act, summary = collect_decoder_data(cfg, run, 0, enc, RunningNormalizer(1, cfg.obs_norm_mode))
        assert summary["episodes_finished"] == cfg.collect_steps and summary["filter"] == mode
        out[mode] = np.sort(TwoModes.reward(np.tanh(act[:, 0].astype(np.float64))))
    n = cfg.collect_steps
    assert out["none"].shape == (n,)
    np.testing.assert_allclose(out["percentile"], out["none"][out["none"] >= np.quantile(out["none"], 0.5)])
    assert out["percentile"].shape[0] in (n // 2, n // 2 + 1) and out["percentile"].mean() > 1.5 * out["none"].mean()


def test_reference_block_filter_is_the_reference_trainers():
    """spec 6.3: the reference's 'episodes' are 1000-row blocks of the time-major rows ranked by
    reward sum; its hybrid threshold is a scalar percentile and its high count is rounded down."""
    from gorl.algorithm.episode_filter import reference_blocks, select_episodes
    rewards = np.zeros((5, 500))  # 5 steps x 500 envs = 2500 rows: 2 whole blocks, 500 rows left over
    rewards[0, 0], rewards[3, 7] = 1.0, 2.0  # row 0 (block 0) and row 1507 (block 1)
    row_block, block_return = reference_blocks(rewards)
    assert block_return.tolist() == [1.0, 2.0]
    assert (row_block[:1000] == 0).all() and (row_block[1000:2000] == 1).all() and (row_block[2000:] == -1).all()
    # hybrid with only episode 9 at or above the threshold (quantile 1): the reference draws
    # int(0.87 * 10) = 8 copies of it plus 2 distinct uniform picks, the episode filter
    # round(8.7) = 9 copies plus 1
    returns = np.arange(10.0)
    for seed in range(20):
        kw = dict(quantile=1.0, high_quality_ratio=0.87)
        ref = select_episodes(returns, "hybrid", rng=np.random.default_rng(seed), reference=True, **kw)
        ep = select_episodes(returns, "hybrid", rng=np.random.default_rng(seed), **kw)
        assert ref.shape == ep.shape == (10,)
        assert (ref == 9).sum() in (8, 9) and (ep == 9).sum() in (9, 10)
        assert len(set(ref[8:].tolist())) == 2


def test_collection_reference_blocks_keep_the_better_block(tmp_path):
    """With decoder_filter_unit=reference_blocks the 'percentile' filter keeps whole 1000-row
    blocks of the time-major collection (here 2 blocks of the bandit's 2000 rows): the one
    with the larger reward sum, row for row; the default unit is 'episodes'."""
    from gorl.core.normalizer import RunningNormalizer
    from gorl.core.run import Run
    from gorl.algorithm.gorl import collect_decoder_data
    from gorl.envs.toy import TwoModes
    task = "gym:GoRLBench/TwoModes-v0"
    out = {}
    for mode in ("none", "percentile"):
        cfg = build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", task,
                           {**V1, "decoder_data_filter": mode, "decoder_filter_unit": "reference_blocks"})
        run = Run(algo="gorl_fm", task=task, seed=0, preset="smoke", dir=tmp_path, config={})
        torch.manual_seed(0)
        enc = make_encoder(cfg, 0, 1, 1, Decoder.identity("fm", 1, 1, cfg.decoder_hidden))
        with torch.no_grad():
            enc.actor.net[-1].bias.copy_(torch.tensor([0.0, 2.0]))
        _, out[mode], summary = collect_decoder_data(cfg, run, 0, enc, RunningNormalizer(1, cfg.obs_norm_mode))
        assert summary["filter_unit"] == "reference_blocks"
    assert cfg.collect_steps == 2000 and out["none"].shape[0] == 2000
    sums = [TwoModes.reward(np.tanh(out["none"][b * 1000:(b + 1) * 1000, 0].astype(np.float64))).sum()
            for b in range(2)]
    best = int(np.argmax(sums))
    np.testing.assert_array_equal(out["percentile"], out["none"][best * 1000:(best + 1) * 1000])
    for preset in ("paper", "paper-v1", "small", "smoke"):
        assert _cfg_preset(preset).decoder_filter_unit == "episodes"


def test_decoder_collection_reference_is_one_trajectory_from_the_training_states(tmp_path):
    """decoder_collection=reference (spec 6.3): each collector env runs collect_steps /
    collect_envs = 1001 steps without the time limit from training env i's first state; the
    default ('episodes') truncates at 1000 steps and starts from its own seeded states."""
    from gorl.algorithm.gorl import collect_decoder_data
    from gorl.core.normalizer import RunningNormalizer
    from gorl.core.onpolicy import OnPolicyTrainer
    from gorl.core.run import Run
    task, N = "cartpole-balance", 1
    run = Run(algo="gorl_fm", task=task, seed=0, preset="smoke", dir=tmp_path, config={})
    out = {}
    for mode in ("reference", "episodes"):
        cfg = _cfg(decoder_collection=mode, collect_steps=1001 * N, collect_envs=N)
        torch.manual_seed(0)
        enc = make_encoder(cfg, 0, 5, 1, Decoder.identity("fm", 5, 1, cfg.decoder_hidden))
        obs, _, summary = collect_decoder_data(cfg, run, 0, enc, RunningNormalizer(5, cfg.obs_norm_mode))
        assert summary["collection"] == mode and summary["rows"] == 1001 * N
        out[mode] = obs, summary
    assert out["reference"][1]["episodes_finished"] == 0
    assert out["episodes"][1]["episodes_finished"] == N
    trainer = OnPolicyTrainer(_cfg(decoder_collection="reference").stage_config(0), run,
                              make_encoder(cfg, 0, 5, 1, Decoder.identity("fm", 5, 1, cfg.decoder_hidden)))
    first = trainer.envs.obs.numpy()[:N]  # training env i = collector env i (the same seeds)
    np.testing.assert_array_equal(out["reference"][0][:N], first)  # rows are time-major: step 0 first
    assert not np.array_equal(out["episodes"][0][:N], first)
    # reset_mode fixed_initial: the trainer's envs return to their first states, evaluation's do not
    fixed = OnPolicyTrainer(_cfg(reset_mode="fixed_initial").stage_config(0), run, trainer.agent)
    assert fixed.envs.host._first is not None and fixed.eval_envs.host._first is None
    assert trainer.envs.host._first is None  # the default: random resets
    # paper-v1 follows the reference, paper the release's episodes; small and smoke train with random resets
    assert (_cfg_preset("paper-v1").reset_mode, _cfg_preset("paper-v1").decoder_collection) == \
        ("fixed_initial", "reference")
    assert (_cfg_preset("paper").reset_mode, _cfg_preset("paper").decoder_collection) == ("fixed_initial", "release")
    for preset in ("small", "smoke"):
        assert (_cfg_preset(preset).reset_mode, _cfg_preset(preset).decoder_collection) == ("random", "release")
    with pytest.raises(ConfigError, match="decoder_collection"):
        _cfg(decoder_collection="continuous")


def _cfg_preset(preset):
    return build_config(GoRLConfig, get("gorl_fm").presets_file, preset, "cartpole-balance", {})


def test_bad_episode_filter_is_refused_before_training():
    with pytest.raises(ConfigError, match="decoder_data_filter"):
        build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", "cartpole-balance",
                     {"decoder_data_filter": "top"})
    with pytest.raises(ConfigError, match="decoder_filter_unit"):
        build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", "cartpole-balance",
                     {"decoder_filter_unit": "blocks"})
    with pytest.raises(ConfigError, match="decoder_filter_quantile"):
        build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", "cartpole-balance",
                     {"decoder_filter_quantile": 50})
