"""Flow matching: Euler sampler, CFM losses, DPPO's per-step Gaussian log-likelihood.

Convention (spec 4): t = 1 is noise, t = 0 is the action; x_t = t eps + (1 - t) a;
target velocity u = eps - a; sampling integrates from t = 1 down to t = 0.
"""
from __future__ import annotations

import functools
import math

import torch
from torch.nn import functional as F

from gorl.generative.networks import EMBED_DIM, ConditionalMLP, sinusoidal_embedding

LOG_2PI = math.log(2.0 * math.pi)


def time_grid(num_steps: int = 10, device=None) -> torch.Tensor:
    """The Euler grid t_k = 1, 1 - 1/n, ..., 1/n (n = num_steps values, float32)."""
    return torch.arange(num_steps, 0, -1, device=device, dtype=torch.float32) / num_steps


@functools.lru_cache(maxsize=64)
def _grid_constants(num_steps: int, embed_dim: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Read-only per-grid constants of the sampler: (time grid, its embedding, step index k)."""
    with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable under autograd later
        grid = time_grid(num_steps, device)
        return grid, sinusoidal_embedding(grid, embed_dim), torch.arange(num_steps, device=device,
                                                                         dtype=torch.float32)


def grid_time(num_steps: int, device: torch.device) -> torch.Tensor:
    """:func:`time_grid`, cached: the same read-only tensor on every call (hot paths)."""
    return _grid_constants(num_steps, EMBED_DIM, device)[0]


def _euler_constants(net: ConditionalMLP, num_steps: int, device: torch.device) -> tuple:
    """The sampler's parameter-derived constants: W_x^T, (dt W_out)^T, dt b_out, the hidden
    layers' (W^T, b), and the first layer's time and bias shares per step (num_steps, h);
    cached by :meth:`ConditionalMLP.sampler_constants`."""
    def build() -> tuple:
        _, emb, k = _grid_constants(num_steps, net.embed_dim, device)
        w_x = net.x_weight
        w_out, b_out = net.output_layer(-1.0 / num_steps)
        step_share = torch.addr(F.linear(emb, net.t_weight), k, w_x @ b_out)
        return w_x.t(), w_out.t(), b_out, net.hidden_layers_t(), step_share
    return net.sampler_constants("euler", (num_steps, device), build)


def euler_sample(net: ConditionalMLP, obs_norm: torch.Tensor, x1: torch.Tensor, num_steps: int = 10,
                 noise_std: float = 0.0, return_chain: bool = False):
    """x_{k+1} = x_k + dt v(obs, x_k, t_k) (+ noise_std * N(0, I), not scaled by dt), t_k = 1, ..., 1/n.

    obs_norm (..., d_o) broadcasts against x1 (..., d_a) (e.g. obs (P, 1, d_o) with
    x1 (P, K, d_a) draws K samples per state). Returns x0, or with ``return_chain``
    (x0, chain (num_steps + 1, ..., d_a) = [x_1, ..., x_0], means (num_steps, ..., d_a)
    = the per-step deterministic targets mu_k = x_k + dt v).

    This is the sampling hot path of FPO, DPPO and the GoRL FM decoder, so the update is
    computed in an equivalent form with fewer tensor ops per step (at rollout batch sizes
    each op costs mostly fixed dispatch time). With the output layer (W, b) pre-scaled
    by dt * output_scale and y_k = x_k - k dt b, one step is
        h = act(cond + W_t emb(t_k) + k W_x (dt b) + W_x y_k)   -> hidden layers
        y_{k+1} = y_k (+ noise) + h (dt W)^T
    (two addmm's plus the hidden layers); the observation, time and bias shares of the
    first layer are computed once for all steps. tests/test_generative.py checks it
    against the plain loop x - dt * net(obs, x, t).
    """
    lead, d_a = x1.shape[:-1], x1.shape[-1]
    w_x_t, w_out_t, b_out, layers_t, step_share = _euler_constants(net, num_steps, x1.device)
    hidden = w_x_t.shape[1]
    cond = net.condition(obs_norm).expand(*lead, hidden).reshape(-1, hidden)
    pre = (cond + step_share.unsqueeze(1)).unbind(0)
    noise = noise_std * torch.randn(num_steps, *lead, d_a, device=x1.device) if noise_std > 0 else None
    noise_steps = noise.reshape(num_steps, -1, d_a).unbind(0) if noise is not None else None
    y = x1.reshape(-1, d_a)
    ys = [y]
    for step in range(num_steps):
        h = net.features(torch.addmm(pre[step], y, w_x_t), layers_t)
        if noise_steps is not None:
            y = y + noise_steps[step]
        y = torch.addmm(y, h, w_out_t)
        if return_chain:
            ys.append(y)
    if not return_chain:
        return torch.add(y, b_out, alpha=num_steps).reshape(x1.shape)
    k_all = torch.arange(num_steps + 1, device=x1.device, dtype=x1.dtype)
    chain = (torch.stack(ys) + k_all[:, None, None] * b_out).reshape(num_steps + 1, *x1.shape)
    means = chain[1:] - noise if noise is not None else chain[1:]
    return chain[-1], chain, means


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
