"""Diffusion (epsilon prediction, deterministic DDIM) for GoRL's diffusion decoder (spec 6.5)."""
from __future__ import annotations

import math

import torch

from gorl.generative.flow import _mc_align
from gorl.generative.networks import ConditionalMLP


def cosine_alpha_bar(T: int = 10, s: float = 0.008) -> torch.Tensor:
    """abar[i] = f(i) / f(0), f(i) = cos(((i/T) + s)/(1 + s) pi/2)^2, i = 0..T-1 (abar[0] = 1)."""
    i = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((i / T) + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0])[:T].float()


def linear_alpha_bar(T: int = 10, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """abar = cumprod(1 - beta), beta linear from beta_start to beta_end over T steps
    (the stage-0 identity diffusion decoder's schedule; abar[T-1] = 0.9037 for T = 10)."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0).float()


def eps_prediction_loss(net: ConditionalMLP, obs_norm: torch.Tensor, a: torch.Tensor, eps: torch.Tensor,
                        i: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Per-sample epsilon-prediction loss, mean over action dims.

    i: integer step indices (shape of t in :func:`cfm_loss`), the network's time input is
    i / T. x_i = sqrt(abar[i]) a + sqrt(1 - abar[i]) eps; l = mean (eps_hat - eps)^2.
    Shapes as :func:`gorl.generative.flow.cfm_loss` (optional trailing MC dim).
    """
    obs_norm, a = _mc_align(obs_norm, a, eps)
    alpha_bar = alpha_bar.to(a.device)
    ab = alpha_bar[i].unsqueeze(-1)
    x_i = ab.sqrt() * a + (1.0 - ab).sqrt() * eps
    eps_hat = net(obs_norm, x_i, i.to(a.dtype) / alpha_bar.shape[0])
    return (eps_hat - eps).pow(2).mean(-1)


def ddim_sample(net: ConditionalMLP, obs_norm: torch.Tensor, xT: torch.Tensor,
                alpha_bar: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) over indices T-1 -> ... -> 0 (T-1 network calls at
    i = T-1..1), abar at the final target index 0 forced to 1 (spec 6.5)."""
    T = alpha_bar.shape[0]
    ab = [float(v) for v in alpha_bar]
    cond = net.condition(obs_norm)
    t_cond = net.time_condition(torch.arange(T, device=xT.device, dtype=torch.float32) / T)  # (T, h)
    x = xT
    for i in range(T - 1, 0, -1):
        eps_hat = net.from_condition_t(cond + t_cond[i], x)
        x0_hat = (x - math.sqrt(1.0 - ab[i]) * eps_hat) / math.sqrt(ab[i])
        ab_prev = 1.0 if i - 1 == 0 else ab[i - 1]
        x = math.sqrt(ab_prev) * x0_hat + math.sqrt(1.0 - ab_prev) * eps_hat
    return x
