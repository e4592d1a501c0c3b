"""The flow policy shared by FPO and DPPO: one velocity network, one Euler sampler.

Subclasses (baselines/fpo.py, baselines/dppo.py) add what is stored at rollout time
(``act``) and the policy loss; acting for evaluation and probes is common.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from gorl.core.onpolicy_config import EVAL_MODES
from gorl.generative.flow import euler_sample
from gorl.generative.networks import ConditionalMLP


class FlowPolicy(nn.Module):
    """pi(a | s): x_1 ~ N(0, I), ``flow_steps`` Euler steps of ``v`` (+ ``noise_std`` per
    step), pre-action = x_0 (the env receives tanh).

    eval_mode "stochastic" = the reference evaluation (random x_1, the sampler's noise
    kept, spec 1.4); "zero_noise" = x_1 = 0 and no per-step noise (a deterministic variant).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], *, output_scale: float,
                 flow_steps: int, noise_std: float = 0.0, eval_mode: str = "stochastic"):
        super().__init__()
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {eval_mode!r}")
        self.net = ConditionalMLP(obs_dim, act_dim, hidden, output_scale)
        self.act_dim, self.flow_steps = act_dim, flow_steps
        self.noise_std, self.eval_mode = noise_std, eval_mode

    def sample(self, obs_norm: torch.Tensor, x1: torch.Tensor, noise_std: float | None = None,
               return_chain: bool = False):
        return euler_sample(self.net, obs_norm, x1, self.flow_steps,
                            self.noise_std if noise_std is None else noise_std, return_chain)

    def _noise(self, obs_norm: torch.Tensor, *lead: int) -> torch.Tensor:
        return torch.randn(*lead, self.act_dim, device=obs_norm.device)

    def act_eval(self, obs_norm, obs_raw):
        if self.eval_mode == "zero_noise":
            x1 = torch.zeros(obs_norm.shape[0], self.act_dim, device=obs_norm.device)
            return self.sample(obs_norm, x1, noise_std=0.0)
        return self.sample(obs_norm, self._noise(obs_norm, obs_norm.shape[0]))

    def sample_actions(self, obs_norm, obs_raw, k):
        """K samples per probe state, each from a fresh x_1 (and fresh per-step noise)."""
        return self.sample(obs_norm.unsqueeze(1), self._noise(obs_norm, obs_norm.shape[0], k))
