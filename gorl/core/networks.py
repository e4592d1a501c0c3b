"""MLP builders with the reference initialisation (spec 2.1).

Linear layers with SiLU between them and no output activation; weights LeCun-uniform
U(-sqrt(3/fan_in), sqrt(3/fan_in)), biases zero.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

LOG_2PI = math.log(2.0 * math.pi)


def lecun_uniform_(layer: nn.Linear) -> nn.Linear:
    bound = math.sqrt(3.0 / layer.in_features)
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """in_dim -> hidden... -> out_dim, SiLU between layers, LeCun-uniform init."""
    dims = [in_dim, *hidden, out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(lecun_uniform_(nn.Linear(a, b)))
        if i < len(dims) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class Critic(nn.Module):
    """State-value network V(s) on normalised observations (spec: 256 x 5)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs_norm: torch.Tensor) -> torch.Tensor:
        return self.net(obs_norm).squeeze(-1)


class GaussianHead(nn.Module):
    """Diagonal Gaussian over an unbounded vector (a pre-action or GoRL's latent).

    Outputs mean and scale = clip(softplus(pre) + 1e-3, 1e-3, scale_cap) (spec 2.1).
    """

    def __init__(self, obs_dim: int, out_dim: int, hidden: Sequence[int],
                 min_scale: float = 1e-3, scale_cap: float | None = 10.0):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * out_dim)
        self.out_dim = out_dim
        self.min_scale = min_scale
        self.scale_cap = scale_cap

    def forward(self, obs_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, pre = self.net(obs_norm).chunk(2, dim=-1)
        scale = F.softplus(pre) + self.min_scale
        if self.scale_cap is not None:
            scale = scale.clamp(self.min_scale, self.scale_cap)
        return mean, scale


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(scale^2)) summed over the last dimension."""
    z = (x - mean) / scale
    return (-0.5 * z.pow(2) - scale.log() - 0.5 * LOG_2PI).sum(-1)


def gaussian_entropy(scale: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over the last dimension."""
    return (0.5 + 0.5 * LOG_2PI + scale.log()).sum(-1)


def tanh_log_det_jacobian(x: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(x)^2), written stably as 2 (log 2 - x - softplus(-2x)); summed over last dim."""
    return (2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))).sum(-1)
