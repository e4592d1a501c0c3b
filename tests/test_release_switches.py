"""The 2026 release's behaviours as switches (issue 18): each switch's behaviour, and a GoRL
run with all of them on that completes, passes check-run and resumes after kill -9 to the
same evaluations. The defaults (v1) are covered by tests/test_gorl.py and tests/test_core.py."""
from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest
import torch

from conftest import after_stage1_decoder, as_old_pickled_checkpoints, cli, cli_here, kill_when
from gorl import rundir
from gorl.algorithm.config import DecoderFitConfig, GoRLConfig
from gorl.algorithm.decoder import Decoder, fit_decoder, split_rows
from gorl.algorithm.gorl import GoRL, collect_release_data, gaussian_output_, make_encoder
from gorl.check_run import check_run
from gorl.config import ConfigError, build_config
from gorl.core.normalizer import RunningNormalizer
from gorl.core.onpolicy import eval_iterations
from gorl.core.run import Run
from gorl.generative import ConditionalMLP, delta_ddim_sample, eps_delta_loss
from gorl.generative.diffusion import delta_coefficients, linear_alpha_bar_t
from gorl.registry import get

TOY = "gym:GoRLBench/TwoModes-v0"  # one-step episodes (tests/toy_envs.py)

# every release switch of GoRL at a smoke geometry (the release's values where they fit)
RELEASE = {"decoder_collection": "release", "collect_episodes": 6, "collect_envs": 4, "stage0_decoder": "exact",
           "decoder_fit_schedule": "steps", "decoder_train_steps": 120, "decoder_eval_interval": 50,
           "decoder_max_val_batches": 2, "decoder_split": "episode", "decoder_target_clip": 3.0,
           "decoder_zero_init_last": True, "decoder_output_scale": 0.25,
           "diffusion_schedule": "linear_alpha_bar", "diffusion_parameterization": "epsilon_delta",
           "decoder_pairwise_weight": 1e-3, "seed_scheme": "release", "eval_schedule": "release",
           "best_ties": "earlier", "obs_norm_mode": "welford", "obs_stats_timing": "rollout",
           "later_stages.encoder_init": "warm_start", "decoder_max_epochs": None}


def _cfg(algo: str = "gorl_fm", task: str = "cartpole-balance", **kw) -> GoRLConfig:
    return build_config(get(algo).config_cls, get(algo).presets_file, "smoke", task, kw)


def _set(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        v = str(v).lower() if isinstance(v, bool) else "null" if v is None else v
        out += ["--set", f"{k}={json.dumps(v) if isinstance(v, list) else v}"]
    return out


# -- evaluation ------------------------------------------------------------------------------
def test_release_eval_schedule():
    """Baselines: before training, after updates round(k*183/30) (half-even) for k = 1..29 and
    after the last; GoRL stages: update 0, linspace(1, n, 9, int) and the last."""
    assert eval_iterations(183, 31, "release") == [0, 6, 12, 18, 24, 30, 37, 43, 49, 55, 61, 67, 73, 79, 85, 92, 98,
                                                   104, 110, 116, 122, 128, 134, 140, 146, 152, 159, 165, 171,
                                                   177, 183]
    assert round(15 * 183 / 30) == 92 and round(2.5) == 2  # Python's rounding, not numpy's half-up
    assert eval_iterations(61, 10, "release", staged=True) == [0, 1, 8, 16, 23, 31, 38, 46, 53, 61]
    assert eval_iterations(30, 10, "release", staged=True) == [0, 1, 4, 8, 11, 15, 19, 22, 26, 30]
    assert eval_iterations(1, 31, "release") == [0, 1] and eval_iterations(1, 10, "release", staged=True) == [0, 1]


def test_best_ties_rule():
    """best_ties 'earlier' (release, strict >) keeps the first of equal returns; 'later' (v1) the last."""
    for ties, want in (("earlier", 0), ("later", 2)):
        g = GoRL.__new__(GoRL)
        g.cfg, g.best = _cfg(best_ties=ties), None
        trainer = _FakeTrainer()
        for step, ret in enumerate([5.0, 4.0, 5.0]):
            g._track_best(trainer, {"return_mean": ret, "env_step": step})
        assert g.best["env_step"] == want and g.best["return"] == 5.0
        g._track_best(trainer, {"return_mean": 5.5, "env_step": 3})
        assert g.best["env_step"] == 3


class _FakeTrainer:
    stage = 0

    def __init__(self):
        self.agent, self.critic = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        self.normalizer = RunningNormalizer(2)


# -- encoder initialisation ------------------------------------------------------------------
def _trainer_pair(tmp_path, init: str):
    """Stage 1's trainer after a (fake) stage 0 whose best encoder has distinctive weights."""
    cfg = _cfg(**{"later_stages.encoder_init": init}, obs_norm_mode="welford")
    run = Run(algo="gorl_fm", task="cartpole-balance", seed=0, preset="smoke", dir=tmp_path, config={})
    g = GoRL(cfg, run)
    t0 = g.make_trainer(0)
    with torch.no_grad():
        for p in [*t0.agent.parameters(), *t0.critic.parameters()]:
            p.add_(0.1 * torch.randn_like(p))
    t0.normalizer.update(torch.randn(50, t0.obs_dim) * 3 + 1)
    t0.optimizer.step()  # no gradients: nothing moves; the state must not travel either
    g._track_best(t0, {"return_mean": 1.0, "env_step": 0})
    g.previous_best, g.best, g.stage = g.best, None, 1
    g.previous_best["normalizer"]["mode"] = "legacy"  # as if stage 0 had used the legacy statistics
    return g, t0, g.make_trainer(1)


def test_warm_start_loads_the_previous_best_encoder_critic_and_statistics(tmp_path):
    g, t0, t1 = _trainer_pair(tmp_path, "warm_start")
    for a, b in zip([*t0.agent.state_dict().values(), *t0.critic.state_dict().values()],
                    [*t1.agent.state_dict().values(), *t1.critic.state_dict().values()]):
        assert torch.equal(a, b)
    st0, st1 = t0.normalizer.state_dict(), t1.normalizer.state_dict()
    assert st1["count"] == st0["count"] == 50 and torch.equal(st0["var_sum"], st1["var_sum"])
    assert st1["mode"] == "welford"  # carried statistics update as the new stage says (HopperStand diffusion)
    assert t1.optimizer.state_dict()["state"] == {}  # a new optimiser
    assert t1.agent.clip_eps == g.cfg.for_stage(1).clip_eps  # stage 1's settings
    for p in t1.agent.parameters():  # the stage's encoder trains, the decoder stays frozen
        assert p.requires_grad


def test_gaussian_warm_value_starts_at_the_prior_with_the_previous_critic(tmp_path):
    g, t0, t1 = _trainer_pair(tmp_path, "gaussian_warm_value")
    mean, scale = t1.agent.actor(torch.randn(32, t1.obs_dim))
    assert torch.equal(mean, torch.zeros_like(mean))
    torch.testing.assert_close(scale, torch.ones_like(scale))
    for a, b in zip(t0.critic.state_dict().values(), t1.critic.state_dict().values()):
        assert torch.equal(a, b)
    assert t1.normalizer.state_dict()["count"] == 50
    torch.manual_seed(0)  # the hidden layers are the fresh initialisation (the run seed's)
    fresh = make_encoder(g.cfg, 1, t1.obs_dim, t1.act_dim, g.decoder)
    gaussian_output_(fresh)
    for a, b in zip(fresh.state_dict().values(), t1.agent.state_dict().values()):
        assert torch.equal(a, b)


def test_fresh_start_is_v1(tmp_path):
    g, t0, t1 = _trainer_pair(tmp_path, "fresh")
    torch.manual_seed(0)
    fresh = make_encoder(g.cfg, 1, t1.obs_dim, t1.act_dim, g.decoder)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), t1.agent.state_dict().values()))
    assert t1.normalizer.state_dict()["count"] == 0


# -- decoders --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_exact_identity_decoder_returns_z(kind):
    obs, z = torch.randn(64, 5), torch.randn(64, 3)
    assert torch.equal(Decoder.identity(kind, 5, 3, [16, 16], how="exact")(obs, z), z)


@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_zero_initialised_release_decoder_is_the_identity(kind):
    """zero_init_last: a fitted decoder starts as the identity map exactly (FM Euler steps and
    the epsilon-delta DDIM steps x + c_k * 0), its hidden layers random."""
    torch.manual_seed(0)
    dec = Decoder(kind, 5, 3, [16, 16], output_scale=0.25, zero_init_last=True, diffusion_form="release")
    assert float(dec.net.net[0].weight.abs().max()) > 0
    obs, z = torch.randn(64, 5), torch.randn(64, 3)
    assert torch.equal(dec(obs, z), z)


def test_epsilon_delta_step_is_the_ddim_step():
    """x + c (eps - ((1 - r) / c) x) = r x + c eps: the release's step is DDIM's with the
    identity's epsilon taken out, on abar(t) = 1e-3 + (1 - 1e-3)(1 - t)."""
    assert float(linear_alpha_bar_t(torch.tensor(1.0))) == pytest.approx(1e-3)
    assert float(linear_alpha_bar_t(torch.tensor(0.0))) == 1.0
    torch.manual_seed(0)
    net = ConditionalMLP(4, 2, [16, 16], output_scale=0.25)
    obs, z = torch.randn(8, 4), torch.randn(8, 2)
    x = z.double()
    t = torch.arange(10, 0, -1, dtype=torch.float64) / 10
    r, c = delta_coefficients(t, 10)
    with torch.no_grad():
        for k in range(10):
            delta = net(obs, x.float(), float(t[k])).double()
            eps = delta + (1 - r[k]) / c[k] * x
            x = r[k] * x + c[k] * eps
        torch.testing.assert_close(delta_ddim_sample(net, obs, z, 10), x.float(), rtol=1e-4, atol=1e-5)
        # the loss target at a zero network: mean (eps - ((1 - r)/c) x_t)^2 > 0, finite at t = 1 and 1/T
        zero = ConditionalMLP(4, 2, [16], zero_init=True)
        loss = eps_delta_loss(zero, obs, torch.randn(8, 2), torch.randn(8, 3, 2), torch.tensor([1, 10]).repeat(8, 2)[:, :3], 10)
        assert loss.shape == (8, 3) and bool(torch.isfinite(loss).all())


def test_split_by_episode_never_shares_an_episode():
    gen = torch.Generator().manual_seed(0)
    episode = np.repeat(np.arange(40), np.random.default_rng(0).integers(1, 30, 40))
    tr, va = split_rows(episode.size, 0.1, gen, episode, "episode")
    assert not set(episode[tr]) & set(episode[va])
    assert len(set(episode[va])) == 4 and len(tr) + len(va) == episode.size  # int(40 * 0.1) episodes


def _fit(schedule_kw, **data):
    rng = np.random.default_rng(0)
    n = 3000
    obs = rng.normal(size=(n, 2)).astype(np.float32)
    acts = (0.5 * obs[:, :1] + 5.0 * (rng.random((n, 1)) < 0.01)).astype(np.float32)  # a few targets beyond 3
    cfg = DecoderFitConfig(hidden=[32, 32], steps=10, learning_rate=3e-3, batch_size=256, max_epochs=2,
                           patience=1, mc_samples=4, max_samples=10**7, val_fraction=0.1, max_val_batches=3,
                           schedule="steps", **schedule_kw)
    return fit_decoder("fm", obs, acts, cfg, seed=0, device=torch.device("cpu"), **data)


def test_steps_schedule_validates_at_0_1_every_interval_and_the_last_and_keeps_the_lowest():
    dec, hist = _fit(dict(train_steps=230, eval_interval=100, target_clip=3.0, zero_init_last=True))
    assert [h["step"] for h in hist] == [0, 1, 100, 200, 230]  # no early stopping
    assert hist[0]["train_loss"] is None and all(math.isfinite(h["val_endpoint_mse"]) for h in hist)
    # the kept decoder is the lowest val_loss: re-evaluating it reproduces that number
    best = min(hist, key=lambda h: h["val_loss"])
    _, hist2 = _fit(dict(train_steps=best["step"], eval_interval=100, target_clip=3.0, zero_init_last=True))
    assert hist2[-1]["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    # epochs (release diffusion): train_steps None = max_epochs x floor(n_train / batch)
    _, hist3 = _fit(dict(train_steps=None, eval_interval=1000))
    assert hist3[-1]["step"] == 2 * (2700 // 256)


def test_steps_schedule_by_endpoint_metric_and_by_episode():
    episode = np.repeat(np.arange(300), 10)
    _, hist = _fit(dict(train_steps=120, eval_interval=50, checkpoint_metric="val_endpoint_mse", split="episode"),
                   episode=episode)
    assert [h["step"] for h in hist] == [0, 1, 50, 100, 120]
    _, fixed = _fit(dict(train_steps=1, eval_interval=50))
    _, redrawn = _fit(dict(train_steps=1, eval_interval=50, val_redraw=True))
    assert fixed[0]["val_loss"] == redrawn[0]["val_loss"]  # the same first draw
    assert fixed[0]["val_endpoint_mse"] != redrawn[0]["val_endpoint_mse"]  # random rows per interval
    assert fixed[1]["val_loss"] != redrawn[1]["val_loss"]  # drawn anew at step 1


def test_pairwise_loss_trains_through_the_sampler():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(3000, 1)).astype(np.float32)
    cfg = dict(train_steps=3, eval_interval=1, pairwise_weight=1.0, diffusion_form="release", zero_init_last=True)
    rng2 = np.random.default_rng(0)
    obs = rng2.normal(size=(3000, 2)).astype(np.float32)
    acts = (latent + 1.0).astype(np.float32)
    fc = DecoderFitConfig(hidden=[16], steps=4, learning_rate=1e-2, batch_size=128, max_epochs=1, patience=1,
                          mc_samples=2, max_samples=10**7, val_fraction=0.1, max_val_batches=1, schedule="steps",
                          **cfg)
    _, with_pair = fit_decoder("diffusion", obs, acts, fc, 0, torch.device("cpu"), episode=np.arange(3000),
                               latent=latent)
    fc.pairwise_weight = 0.0
    _, without = fit_decoder("diffusion", obs, acts, fc, 0, torch.device("cpu"))
    # at step 0 (zero output layer: the identity) the pairwise term is mean (z - a)^2 = 1
    assert with_pair[0]["val_loss"] - without[0]["val_loss"] == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="latent"):
        fc.pairwise_weight = 1.0
        fit_decoder("diffusion", obs, acts, fc, 0, torch.device("cpu"))


def test_release_collection_is_complete_episodes_from_fresh_resets(tmp_path):
    """collect_episodes episodes, collect_envs at a time, every row with its latent and episode
    id; the same seed collects the same rows."""
    cfg = build_config(GoRLConfig, get("gorl_fm").presets_file, "smoke", TOY,
                       {"decoder_collection": "release", "collect_episodes": 10, "collect_envs": 4,
                        "seed_scheme": "release"})
    run = Run(algo="gorl_fm", task=TOY, seed=0, preset="smoke", dir=tmp_path, config={})
    enc = make_encoder(cfg, 0, 1, 1, Decoder.identity("fm", 1, 1, cfg.decoder_hidden, how="exact"))
    data = collect_release_data(cfg, run, 0, enc, RunningNormalizer(1))
    assert list(data["episode"]) == list(range(10)) and data["summary"]["episodes_finished"] == 10
    assert np.array_equal(data["latent"], data["action"])  # identity decoder: a = z
    assert data["summary"]["collection_seed"] == 0 + 992
    again = collect_release_data(cfg, run, 0, enc, RunningNormalizer(1))
    assert np.array_equal(again["action"], data["action"])
    assert cfg.decoder_seed(7, 2) == 7 + 12 + 20 and cfg.collection_seed(7, 2) == 7 + 992 + 2002


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad, key", [
    ({"later_stages.encoder_init": "warm"}, "encoder_init"),
    ({"encoder_init": "warm_start"}, "encoder_init"),  # stage 0 has nothing to start from
    ({"stage9.clip_eps": 0.2}, "stage9.clip_eps"),
    ({"best_ties": "first"}, "best_ties"),
    ({"decoder_collection": "episodes", "collect_steps": 2000, "collect_episodes": None}, "decoder_split"),
    ({"diffusion_schedule": "linear_alpha_bar"}, "diffusion_schedule"),
    ({"decoder_checkpoint_metric": "val_mse"}, "decoder_checkpoint_metric"),
    ({"decoder_patience": 5}, "decoder_patience"),  # the steps schedule never stops early: not silently ignored
    ({"collect_steps": 2000}, "collect_steps"),  # the release collection counts episodes
    ({"stage0_decoder": "none"}, "stage0_decoder"),
    ({"eval_schedule": "releases"}, "eval_schedule"),
])
def test_bad_release_keys_are_one_line_errors(bad, key):
    with pytest.raises(ConfigError, match=key) as e:
        _cfg(**bad)
    assert "\n" not in str(e.value)


def test_for_stage_gives_each_stage_its_values():
    cfg = _cfg(**{"later_stages.encoder_init": "gaussian_warm_value", "clip_eps": 0.15, "later_stages.clip_eps": 0.3,
                  "max_grad_norm": 0.5, "later_stages.max_grad_norm": 1.0, "latent_reg_coef": 5e-4,
                  "later_stages.latent_reg_coef": 1e-3})
    s = [cfg.for_stage(k) for k in range(3)]
    assert [x.encoder_init for x in s] == ["fresh", "gaussian_warm_value", "gaussian_warm_value"]
    assert [x.clip_eps for x in s] == [0.15, 0.3, 0.3] and [x.max_grad_norm for x in s] == [0.5, 1.0, 1.0]
    assert [x.latent_reg_coef for x in s] == [5e-4, 1e-3, 1e-3]


def test_ppo_without_a_scale_cap():
    from baselines.ppo import make_agent
    cfg = build_config(get("ppo").config_cls, get("ppo").presets_file, "smoke", "cartpole-balance",
                       {"scale_cap": None})
    agent = make_agent(cfg, 3, 1)
    with torch.no_grad():
        agent.actor.net[-1].bias.fill_(50.0)
    with torch.no_grad():
        _, scale = agent.actor(torch.zeros(2, 3))
    assert float(scale.min()) > 10.0


# -- a GoRL run with every release switch ----------------------------------------------------
def _evals(d) -> list[dict]:
    with open(d / "evals.csv") as f:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]


def test_release_run_passes_check_run_and_resumes_after_kill(tmp_path):
    """gorl_diffusion at smoke geometry with all release switches: completes, passes check-run,
    stage 1 starts from stage 0's best encoder, and a kill -9 after the stage-1 decoder is
    written resumes to identical evaluations and probes, also with --trust-checkpoint from the
    same checkpoints in an older version's pickled format (the kill comes right after the stage
    boundary's checkpoint, which holds no trainer), leaving only plain-data checkpoints. Two
    stages of two iterations (the smoke preset's four stages of one add nothing here but two more
    decoder fits per run)."""
    args = ["train", "gorl_diffusion", "cartpole-balance", "--preset", "smoke", "--steps", "7680", "--seed", "1",
            "--quiet", *_set(RELEASE), "--set", "stage_steps=[1, 1]"]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    cli_here(*args, "--out", ref)  # the reference in this process; the killed run and the resumes in fresh ones
    assert cli_here("check-run", ref).stdout.strip().endswith(": ok")
    rows = _evals(ref)
    cfg = _cfg("gorl_diffusion", total_steps=7680, stage_steps=[1, 1], **RELEASE)
    n = cfg.stage_iterations()
    assert n == [2, 2]
    assert [int(r["env_step"]) for r in rows if r["stage"] == "0"][-1] == n[0] * cfg.steps_per_iteration
    assert len(rows) == sum(len(eval_iterations(k, cfg.num_evals, "release", staged=True)) for k in n)
    best0 = torch.load(ref / "stages/stage0/encoder_best.pt", weights_only=False)
    stage0 = [float(r["return_mean"]) for r in rows if r["stage"] == "0"]
    assert best0["return"] == max(stage0) and best0["env_step"] == int(
        [r for r in rows if r["stage"] == "0"][stage0.index(max(stage0))]["env_step"])  # the earliest best
    summary = json.loads((ref / "stages/stage0/dataset_summary.json").read_text())
    assert summary["collection"] == "release" and summary["episodes_finished"] == 6
    kill_when(args, killed, after_stage1_decoder, timeout=300)
    older = tmp_path / "older"  # the same kill, its checkpoints in an older version's pickled format
    shutil.copytree(killed, older)
    as_old_pickled_checkpoints(older)
    cli(*args, "--out", killed)
    out = cli(*args, "--out", older, "--trust-checkpoint")
    assert "rewrote checkpoint.pt and checkpoint.prev.pt" in out.stdout, out.stdout
    for d in (killed, older):
        assert _evals(d) == rows
        a, b = np.load(ref / "probes.npz"), np.load(d / "probes.npz")
        assert np.array_equal(a["actions"], b["actions"])
    assert rundir.pickled_checkpoints(older) == [] and check_run(older) == []


def test_release_fm_run_with_gaussian_warm_value_passes_check_run(tmp_path):
    """gorl_fm with WalkerWalk's and FishSwim's FM switches (gaussian_warm_value, endpoint-MSE
    checkpoint, redrawn validation, no target clip) completes and passes check-run."""
    fm = {**RELEASE, "later_stages.encoder_init": "gaussian_warm_value", "decoder_checkpoint_metric": "val_endpoint_mse",
          "decoder_val_redraw": True, "decoder_target_clip": None, "decoder_pairwise_weight": 0.0,
          "decoder_output_scale": 1.0}
    out = tmp_path / "run"
    cli_here("train", "gorl_fm", "cartpole-balance", "--preset", "smoke", "--steps", "3840", "--seed", "0", "--quiet",
             "--out", out, *_set({k: v for k, v in fm.items() if v is not None and not k.startswith("diffusion_")}),
             "--set", "decoder_target_clip=null",  # FM has no diffusion keys
             "--set", "stage_steps=[1, 1]")  # stage 1: a later stage, started gaussian_warm_value
    assert cli_here("check-run", out).stdout.strip().endswith(": ok")
    summary = json.loads((out / "stages/stage0/dataset_summary.json").read_text())
    assert summary["decoder_checkpoint_metric"] == "val_endpoint_mse"
    with open(out / "stages/stage0/decoder_fit.csv") as f:
        fit = list(csv.DictReader(f))
    assert summary["decoder_best_value"] == min(float(r["val_endpoint_mse"]) for r in fit)
