"""Time embedding and the conditional network shared by FPO, DPPO and GoRL's decoders.

``ConditionalMLP`` is ``output_scale * mlp(concat[obs_norm, x, emb(t)])`` (spec 4, 6.4,
6.5) built on :func:`gorl.core.networks.mlp` (LeCun-uniform init, SiLU). The concat is
never materialised: the first layer's weight is applied in three column blocks
(``W_o obs + W_x x + W_t emb(t) + b``), which is the same function, broadcasts over any
leading dims (batch, MC samples, denoising steps) and lets a sampler project the
observation once per action instead of once per integration step (:meth:`condition`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gorl.core.networks import mlp

EMBED_DIM = 8


def sinusoidal_embedding(t: torch.Tensor | float, dim: int = EMBED_DIM) -> torch.Tensor:
    """[cos(t 2^j), sin(t 2^j)] for j = 0..dim/2-1 (spec 4): (...) -> (..., dim).

    Order: all cosines, then all sines (the reference concatenates the two blocks).
    """
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}")
    t = torch.as_tensor(t, dtype=torch.float32)
    freqs = 2.0 ** torch.arange(dim // 2, dtype=t.dtype, device=t.device)
    arg = t.unsqueeze(-1) * freqs
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class ConditionalMLP(nn.Module):
    """v(obs_norm, x, t) = output_scale * mlp(concat[obs_norm, x, emb(t)]).

    Shapes: obs_norm (..., d_o), x (..., d_a), t (...) broadcast against each other
    (right-aligned, as torch broadcasting); the result is (..., d_a).
    ``zero_init=True`` (or :meth:`zero_`) zeroes every weight and bias: the network
    outputs exactly 0 (GoRL's identity decoder, spec 6.6).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], output_scale: float = 1.0,
                 embed_dim: int = EMBED_DIM, zero_init: bool = False):
        super().__init__()
        self.obs_dim, self.act_dim, self.embed_dim = obs_dim, act_dim, embed_dim
        self.output_scale = float(output_scale)
        self.net = mlp(obs_dim + act_dim + embed_dim, list(hidden), act_dim)
        if zero_init:
            self.zero_()

    @torch.no_grad()
    def zero_(self) -> "ConditionalMLP":
        for p in self.parameters():
            p.zero_()
        return self

    def condition(self, obs_norm: torch.Tensor) -> torch.Tensor:
        """The observation's share of the first layer (bias included): (..., d_o) -> (..., h)."""
        first = self.net[0]
        return F.linear(obs_norm, first.weight[:, :self.obs_dim], first.bias)

    def from_condition(self, cond: torch.Tensor, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Forward given ``cond = self.condition(obs_norm)`` (reused across sampler steps)."""
        first = self.net[0]
        d_o, d_a = self.obs_dim, self.act_dim
        h = cond + F.linear(x, first.weight[:, d_o:d_o + d_a])
        h = h + F.linear(sinusoidal_embedding(torch.as_tensor(t, device=x.device), self.embed_dim),
                         first.weight[:, d_o + d_a:])
        out = self.net[1:](h)
        return out * self.output_scale if self.output_scale != 1.0 else out

    def forward(self, obs_norm: torch.Tensor, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return self.from_condition(self.condition(obs_norm), x, t)
