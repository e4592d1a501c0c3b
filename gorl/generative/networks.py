"""Time embedding and the conditional network shared by FPO, DPPO and GoRL's decoders.

``ConditionalMLP`` is ``output_scale * mlp(concat[obs_norm, x, emb(t)])`` (spec 4, 6.4,
6.5) built on :func:`gorl.core.networks.mlp` (LeCun-uniform init, SiLU). The concat is
never materialised: the first layer's weight is applied in three column blocks
(``W_o obs + W_x x + W_t emb(t) + b``), which is the same function, broadcasts over any
leading dims (batch, MC samples, denoising steps) and lets a sampler project the
observation once per action instead of once per integration step (:meth:`condition`).
"""
from __future__ import annotations

from typing import Callable, Sequence

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
        self._trunk_layers = [m for m in self.net if isinstance(m, nn.Linear)][1:]
        if zero_init:
            self.zero_()

    @torch.no_grad()
    def zero_(self) -> "ConditionalMLP":
        for p in self.parameters():
            p.zero_()
        return self

    @torch.no_grad()
    def zero_last_(self) -> "ConditionalMLP":
        """Zero the output layer only (the release's ``zero_final_layer``): the network outputs
        exactly 0 at initialisation, the hidden layers keep their random initial weights."""
        for p in self._trunk_layers[-1].parameters():
            p.zero_()
        return self

    def sampler_constants(self, tag: str, key: tuple, build: Callable[[], tuple]) -> tuple:
        """``build()``: a sampler's parameter-derived constants (transposed and pre-scaled
        weights, per-step shares of the first layer).

        Without autograd they are cached on the network under ``tag`` while its parameters
        are unchanged (same tensors, same in-place version counters: an optimiser step or
        load_state_dict invalidates them) and ``key`` is equal, so a rollout computes them
        once instead of once per env step.
        """
        if torch.is_grad_enabled():
            return build()
        full_key = (key, tuple((p.data_ptr(), p._version) for p in self.parameters()))
        cache = self.__dict__.setdefault("_sampler_cache", {})
        hit = cache.get(tag)
        if hit is not None and hit[0] == full_key:
            return hit[1]
        consts = build()
        cache[tag] = (full_key, consts)
        return consts

    def condition(self, obs_norm: torch.Tensor) -> torch.Tensor:
        """The observation's share of the first layer (bias included): (..., d_o) -> (..., h)."""
        first = self.net[0]
        return F.linear(obs_norm, first.weight[:, :self.obs_dim], first.bias)

    def time_condition(self, t: torch.Tensor | float, device=None) -> torch.Tensor:
        """The time embedding's share of the first layer: (...) -> (..., h). A sampler
        computes it once for its whole time grid."""
        first = self.net[0]
        t = torch.as_tensor(t, device=device if device is not None else first.weight.device)
        return F.linear(sinusoidal_embedding(t, self.embed_dim), self.t_weight)

    @property
    def x_weight(self) -> torch.Tensor:
        """The first layer's columns that multiply the noisy action x: (h, d_a)."""
        return self.net[0].weight[:, self.obs_dim:self.obs_dim + self.act_dim]

    @property
    def t_weight(self) -> torch.Tensor:
        """The first layer's columns that multiply the time embedding: (h, embed_dim)."""
        return self.net[0].weight[:, self.obs_dim + self.act_dim:]

    def hidden_layers_t(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(W^T, b) of the hidden layers after the first: a sampler transposes them once per call."""
        return [(layer.weight.t(), layer.bias) for layer in self._trunk_layers[:-1]]

    def features(self, h: torch.Tensor, layers_t: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                 ) -> torch.Tensor:
        """The last hidden activation, given the first layer's pre-activation ``h``.
        One addmm and one activation per layer (in place when no graph is recorded)."""
        inplace = not torch.is_grad_enabled()
        h = F.silu(h, inplace=inplace)
        for w_t, b in self.hidden_layers_t() if layers_t is None else layers_t:
            h = F.silu(torch.addmm(b, h, w_t) if h.dim() == 2 else F.linear(h, w_t.t(), b), inplace=inplace)
        return h

    def output_layer(self, factor: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) of the output layer with ``factor * output_scale`` folded in."""
        last = self._trunk_layers[-1]
        c = factor * self.output_scale
        return c * last.weight, c * last.bias

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Everything after the first layer's pre-activation."""
        last = self._trunk_layers[-1]
        h = F.linear(self.features(h), last.weight, last.bias)
        return h * self.output_scale if self.output_scale != 1.0 else h

    def from_condition_t(self, cond_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Forward given ``cond_t = condition(obs) + time_condition(t)`` (the sampler's hot path)."""
        w_x = self.x_weight
        if cond_t.dim() == 2 and x.dim() == 2 and cond_t.shape[0] == x.shape[0]:
            h = torch.addmm(cond_t, x, w_x.t())
        else:
            h = cond_t + F.linear(x, w_x)
        return self.trunk(h)

    def from_condition(self, cond: torch.Tensor, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Forward given ``cond = self.condition(obs_norm)`` (reused across sampler steps)."""
        return self.from_condition_t(cond + self.time_condition(t, x.device), x)

    def forward(self, obs_norm: torch.Tensor, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        return self.from_condition(self.condition(obs_norm), x, t)
