"""Generative building blocks and the FPO/DPPO losses (spec 4, 5)."""
from __future__ import annotations

import math

import pytest
import torch

from baselines.dppo import DPPOAgent, DPPOConfig
from baselines.fpo import FPOAgent, FPOConfig
from gorl.generative import (ConditionalMLP, cfm_loss, cosine_alpha_bar, delta_ddim_sample, euler_sample,
                             sinusoidal_embedding, time_grid)
from gorl.generative.diffusion import delta_coefficients


class TrueVelocity(torch.nn.Module):
    """v(s, x_t, t) = eps - a for a known (a, eps): the exact CFM target."""

    def __init__(self, a, eps):
        super().__init__()
        self.a, self.eps = a, eps

    def forward(self, obs, x, t):
        return (self.eps - self.a).expand_as(x)


def test_cfm_loss_is_zero_for_the_true_velocity():
    torch.manual_seed(0)
    a, eps, t = torch.randn(16, 1, 3), torch.randn(16, 8, 3), torch.rand(16, 8)
    net = TrueVelocity(a, eps)
    for mode in ("velocity", "fpo"):
        assert float(cfm_loss(net, torch.zeros(16, 5), a.squeeze(1), eps, t, mode).abs().max()) < 1e-12
    # and positive for any other velocity field
    other = TrueVelocity(a + 0.1, eps)
    assert float(cfm_loss(other, torch.zeros(16, 5), a.squeeze(1), eps, t, "velocity").min()) > 0


def test_embedding_and_grid():
    e = sinusoidal_embedding(torch.tensor([0.0, 0.5]))
    assert e.shape == (2, 8)
    torch.testing.assert_close(e[1, :4], torch.cos(0.5 * 2.0 ** torch.arange(4.0)))
    torch.testing.assert_close(time_grid(10), torch.tensor([1.0, .9, .8, .7, .6, .5, .4, .3, .2, .1]))
    ab = cosine_alpha_bar(10)
    torch.testing.assert_close(ab, torch.tensor([1, .972, .899, .787, .647, .494, .341, .203, .094, .024]),
                               atol=1.5e-3, rtol=0)


def test_sampler_fast_path_equals_the_plain_forward():
    """euler_sample's folded update equals the plain loop x <- x + dt v(obs, x, t) (+ noise),
    with and without per-step noise, for broadcast (state, K samples) shapes, and its
    chain and means are the plain loop's states and deterministic targets."""
    torch.manual_seed(0)
    net = ConditionalMLP(5, 3, [32, 32], output_scale=0.25)
    for obs, x1 in ((torch.randn(7, 5), torch.randn(7, 3)), (torch.randn(4, 1, 5), torch.randn(4, 6, 3))):
        for sigma in (0.0, 0.05):
            torch.manual_seed(1)
            x0, chain, means = euler_sample(net, obs, x1, 10, noise_std=sigma, return_chain=True)
            torch.manual_seed(1)
            noise = sigma * torch.randn(10, *x1.shape)
            x, xs, mus = x1, [x1], []
            with torch.no_grad():
                for k, t in enumerate(time_grid(10)):
                    mus.append(x - 0.1 * net(obs, x, t))
                    x = mus[-1] + noise[k]
                    xs.append(x)
                torch.manual_seed(1)
                torch.testing.assert_close(euler_sample(net, obs, x1, 10, noise_std=sigma), x, rtol=1e-5, atol=1e-6)
            for got, want in ((x0, x), (chain, torch.stack(xs)), (means, torch.stack(mus))):
                torch.testing.assert_close(got.detach(), want, rtol=1e-5, atol=1e-6)


def _plain_euler(net, obs, x1):
    x = x1
    for t in time_grid(10):
        x = x - 0.1 * net(obs, x, t)
    return x


def _plain_delta_ddim(net, obs, z):
    """The release's sampler written out: x <- x + c_k net(obs, x, t_k)."""
    t = torch.arange(10, 0, -1, dtype=torch.float64) / 10
    _, c = delta_coefficients(t, 10)
    x = z
    for k in range(10):
        x = x + float(c[k]) * net(obs, x, float(t[k]))
    return x


@pytest.mark.parametrize("sampler, plain, exact", [
    (lambda net, obs, x: euler_sample(net, obs, x, 10), _plain_euler, False),
    (lambda net, obs, x: delta_ddim_sample(net, obs, x, 10), _plain_delta_ddim, True),
], ids=["euler", "delta_ddim"])
def test_sampler_constants_follow_parameter_updates(sampler, plain, exact):
    """The samplers cache their parameter-derived constants under no_grad; an optimiser step
    and a load_state_dict must both invalidate them. The release's DDIM sampler caches only
    what it used to compute per step, so it stays equal to the plain loop bit for bit."""
    torch.manual_seed(0)
    net = ConditionalMLP(4, 2, [16, 16], output_scale=0.25)
    obs, x1 = torch.randn(5, 4), torch.randn(5, 2)
    bitwise = dict(rtol=0, atol=0) if exact else None

    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for change in ("optimiser", "load_state_dict"):
        with torch.no_grad():
            first = sampler(net, obs, x1)
            torch.testing.assert_close(sampler(net, obs, x1), first, **(bitwise or {}))  # cached path
        if change == "optimiser":
            opt.zero_grad()
            net(obs, x1, torch.rand(5)).pow(2).sum().backward()
            opt.step()
        else:
            net.load_state_dict(before)
        with torch.no_grad():
            after = sampler(net, obs, x1)
            torch.testing.assert_close(after, plain(net, obs, x1), **(bitwise or dict(rtol=1e-5, atol=1e-6)))
        assert not torch.allclose(after, first)
    with torch.enable_grad():  # not cached under autograd, and differentiable (the release's pairwise loss)
        obs_g = obs.clone().requires_grad_(True)
        got = torch.autograd.grad(sampler(net, obs_g, x1).sum(), obs_g)[0]
        want = torch.autograd.grad(plain(net, obs_g, x1).sum(), obs_g)[0]
        # not bit for bit: the plain loop sums the observation's gradient over its steps
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def _fpo(**kw):
    return FPOAgent(FPOConfig(**kw), 6, 2)


def test_fpo_ratio_is_one_before_the_first_update():
    torch.manual_seed(0)
    for avg in (False, True):
        agent = _fpo(average_losses_before_exp=avg, ratio_log_clip=None if avg else 3.0)  # v1: per-sample, clipped
        obs = torch.randn(4, 6)
        a, stored = agent.act(obs, obs)
        # as the trainer does: (eps, t) and l_old for the whole (S, N) rollout after it
        obs, stored = obs.unsqueeze(0), {k: v.unsqueeze(0) for k, v in stored.items()}
        stored.update(agent.finish_rollout(obs, stored))
        assert stored["eps"].shape == (1, 4, 8, 2) and stored["t"].shape == (1, 4, 8)
        assert stored["l_old"].shape == (1, 4, 8)
        assert set(stored["t"].unique().tolist()) <= set(time_grid(10).tolist())  # discretised t
        ratio, _ = agent.ratio(obs, stored)
        assert torch.equal(ratio, torch.ones_like(ratio))


def test_dppo_chain_logprob_matches_a_direct_gaussian():
    torch.manual_seed(0)
    agent = DPPOAgent(DPPOConfig(), 6, 2)
    obs = torch.randn(3, 6)
    a, stored = agent.act(obs, obs)
    chain, logp = stored["chain"], stored["logp"]
    assert chain.shape == (3, 11, 2) and logp.shape == (3, 10) and torch.equal(chain[:, -1], a)
    # direct computation, one step at a time, with torch.distributions
    for b in range(3):
        for k, t in enumerate(time_grid(10)):
            x_k = chain[b, k]
            mean = x_k - 0.1 * agent.net(obs[b], x_k, t)
            d = torch.distributions.Normal(mean, 0.05 + 1e-6)
            direct = d.log_prob(chain[b, k + 1]).sum() + 2 * math.log(0.05 + 1e-6)  # reference drops -d log sigma
            torch.testing.assert_close(logp[b, k], direct, rtol=1e-4, atol=1e-3)
    # before any update the per-step ratios are 1 (up to float rounding of the two code paths)
    ratio = torch.exp(agent.step_logprob(obs, chain) - logp)
    torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=0, atol=1e-4)


@pytest.mark.parametrize("flow_steps", [5, 10])
def test_dppo_step_noise_is_noise_std_whatever_the_step_size(flow_steps):
    """Each stored transition is its Gaussian mean plus noise of std ``noise_std`` (0.05), not
    scaled by dt (spec 5; the reference adds sde_sigma * z at every step): what the per-step
    likelihood assumes."""
    torch.manual_seed(0)
    agent = DPPOAgent(DPPOConfig(flow_steps=flow_steps), 4, 2)
    obs = torch.randn(4000, 4)
    with torch.no_grad():
        _, stored = agent.act(obs, obs)
        chain = stored["chain"]
        x_k = chain[:, :-1]
        mean = x_k - (1.0 / flow_steps) * agent.net(obs.unsqueeze(1), x_k, time_grid(flow_steps))
        z = (chain[:, 1:] - mean) / agent.noise_std                     # (B, K, d_a)
    assert abs(float(z.mean())) < 0.02
    torch.testing.assert_close(z.std(dim=(0, 2)), torch.ones(flow_steps), rtol=0, atol=0.03)


def test_dppo_loss_moves_the_sampled_actions_toward_positive_advantage():
    """A one-state bandit, reward -(tanh(x_0) - 0.5)^2: a few PPO updates on the per-step
    ratios move the evaluated actions (random x_1 and per-step noise, as in the reference)
    toward 0.5 and narrow their spread, which comes mostly from x_1, a state without a ratio
    of its own (the per-step noise alone gives x_0 a std of about 0.16)."""
    torch.manual_seed(0)
    agent = DPPOAgent(DPPOConfig(), 3, 1)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    obs = torch.zeros(512, 3)

    def evaluated_actions():
        with torch.no_grad():
            return torch.tanh(agent.act_eval(obs, obs)[:, 0])

    before = evaluated_actions()
    for _ in range(6):
        with torch.no_grad():
            x0, stored = agent.act(obs, obs)
            reward = -(torch.tanh(x0[:, 0]) - 0.5) ** 2
            adv = (reward - reward.mean()) / reward.std()
        for _ in range(10):
            loss, _ = agent.policy_loss(obs, stored, adv)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = evaluated_actions()
    stderr = math.sqrt((before.var() + after.var()) / len(obs))
    assert after.mean() - before.mean() > 3 * stderr
    assert after.std() < before.std()


@pytest.mark.parametrize("agent_cls,cfg_cls", [(FPOAgent, FPOConfig), (DPPOAgent, DPPOConfig)])
def test_sampler_shapes_bounds_and_determinism(agent_cls, cfg_cls):
    obs = torch.randn(5, 6)
    out = []
    for _ in range(2):
        torch.manual_seed(3)
        agent = agent_cls(cfg_cls(), 6, 2)
        a, _ = agent.act(obs, obs)
        probes = agent.sample_actions(obs[:2], obs[:2], 7)
        out.append((a, probes, agent.act_eval(obs, obs)))
    assert out[0][0].shape == (5, 2) and out[0][1].shape == (2, 7, 2) and out[0][2].shape == (5, 2)
    assert all(torch.equal(x, y) for x, y in zip(out[0], out[1]))
    assert float(torch.tanh(out[0][1].detach()).abs().max()) <= 1.0
    assert torch.isfinite(out[0][0]).all()
