"""Flow matching: Euler sampler, CFM losses, DPPO's per-step Gaussian log-likelihood.

Convention (spec 4): t = 1 is noise, t = 0 is the action; x_t = t eps + (1 - t) a;
target velocity u = eps - a; sampling integrates from t = 1 down to t = 0.
"""
from __future__ import annotations

import math

import torch

from gorl.generative.networks import ConditionalMLP

LOG_2PI = math.log(2.0 * math.pi)


def time_grid(num_steps: int = 10, device=None) -> torch.Tensor:
    """The Euler grid t_k = 1, 1 - 1/n, ..., 1/n (n = num_steps values, float32)."""
    return torch.arange(num_steps, 0, -1, device=device, dtype=torch.float32) / num_steps


def euler_sample(net: ConditionalMLP, obs_norm: torch.Tensor, x1: torch.Tensor, num_steps: int = 10,
                 noise_std: float = 0.0, return_chain: bool = False):
    """x <- x + dt v(obs, x, t_k) (+ noise_std * N(0, I), not scaled by dt), t_k = 1, ..., 1/n.

    obs_norm (..., d_o) broadcasts against x1 (..., d_a) (e.g. obs (P, 1, d_o) with
    x1 (P, K, d_a) draws K samples per state). Returns x0, or with ``return_chain``
    (x0, chain (num_steps + 1, ..., d_a) = [x_1, ..., x_0], means (num_steps, ..., d_a)
    = the per-step deterministic targets mu_k = x_k + dt v).
    """
    dt = -1.0 / num_steps
    cond = net.condition(obs_norm)
    t_cond = net.time_condition(time_grid(num_steps, x1.device))  # (num_steps, h), once
    x = x1
    chain, means = [x1], []
    for k in range(num_steps):
        mu = x + dt * net.from_condition_t(cond + t_cond[k], x)
        x = mu + noise_std * torch.randn_like(mu) if noise_std > 0 else mu
        if return_chain:
            chain.append(x)
            means.append(mu)
    if return_chain:
        return x, torch.stack(chain), torch.stack(means)
    return x


def _mc_align(obs_norm: torch.Tensor, a: torch.Tensor, eps: torch.Tensor):
    """Add the MC-sample dim to obs and a when eps carries one more dim than a."""
    if eps.dim() == a.dim() + 1:
        return obs_norm.unsqueeze(-2), a.unsqueeze(-2)
    return obs_norm, a


def cfm_loss(net: ConditionalMLP, obs_norm: torch.Tensor, a: torch.Tensor, eps: torch.Tensor,
             t: torch.Tensor, mode: str = "fpo") -> torch.Tensor:
    """Per-(eps, t) conditional flow-matching loss, mean over action dims.

    obs_norm (..., d_o), a (..., d_a), eps (..., N, d_a), t (..., N) -> (..., N); or
    without the MC dim: eps like a, t (...) -> (...).

    mode "fpo" (FPO's "u_but_supervise_as_eps", spec 4): x1_hat = x_t + (1 - t) v,
    l = mean (eps - x1_hat)^2 = (1 - t)^2 mean (eps - a - v)^2.
    mode "velocity" (plain CFM, GoRL FM decoder, spec 6.4): l = mean (v - (eps - a))^2.
    """
    obs_norm, a = _mc_align(obs_norm, a, eps)
    tt = t.unsqueeze(-1)
    x_t = tt * eps + (1.0 - tt) * a
    v = net(obs_norm, x_t, t)
    if mode == "fpo":
        return (eps - (x_t + (1.0 - tt) * v)).pow(2).mean(-1)
    if mode == "velocity":
        return (v - (eps - a)).pow(2).mean(-1)
    raise ValueError(f"cfm_loss mode must be 'fpo' or 'velocity', got {mode!r}")


def gaussian_step_logprob(x_next: torch.Tensor, mean: torch.Tensor, sigma: float) -> torch.Tensor:
    """DPPO's per-step log-likelihood (spec 5), summed over the last (action) dim:
    -0.5 ||(x_next - mean) / (sigma + 1e-6)||^2 - d_a/2 log(2 pi)  (the -d_a log sigma
    constant is omitted as in the reference; it cancels in ratios)."""
    z = (x_next - mean) / (sigma + 1e-6)
    return -0.5 * z.pow(2).sum(-1) - 0.5 * x_next.shape[-1] * LOG_2PI
