"""Brax-style value targets and advantages (spec 2.5), recomputed per minibatch."""
from __future__ import annotations

import torch


def brax_gae(rewards: torch.Tensor, values: torch.Tensor, bootstrap_value: torch.Tensor,
             discount: torch.Tensor, truncation: torch.Tensor, gamma: float,
             lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lambda-return value targets and one-step advantages over a (T, B) segment batch.

    rewards, values, discount (1 - terminated), truncation: (T, B); bootstrap_value: (B,)
    is V(next_obs of the last row). Rewards are expected already scaled.
    Returns (vs, advantages), both (T, B). Truncated rows get zero advantage and are
    excluded from the recursion (their ``m_t = 0``), exactly as Brax does.
    """
    T = rewards.shape[0]
    m = 1.0 - truncation
    g = gamma * discount
    values_next = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], 0)
    deltas = m * (rewards + g * values_next - values)
    acc = torch.zeros_like(bootstrap_value)
    vs_minus_v = torch.empty_like(values)
    coef = g * lam * m
    for t in range(T - 1, -1, -1):
        acc = deltas[t] + coef[t] * acc
        vs_minus_v[t] = acc
    vs = values + vs_minus_v
    vs_next = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], 0)
    advantages = m * (rewards + g * vs_next - values)
    return vs, advantages
