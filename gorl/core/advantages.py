"""Brax-style value targets and advantages (spec 2.5), recomputed per minibatch."""
from __future__ import annotations

import torch


def reverse_linear_scan(deltas: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    """acc_t = deltas_t + coef_t * acc_{t+1} over the leading axis (acc_T = 0), in
    ceil(log2 T) rounds of whole-tensor ops instead of T Python-level steps.

    Each round composes every element's affine map with the one ``d`` rows later
    (d = 1, 2, 4, ...): after the round with offset d, row t holds the sum over its next 2d rows
    and the product of their coefficients. A coefficient may be 0 (a termination or a truncation
    cuts the sum there). The sums are added in a different order than the step-by-step
    recursion, so the result equals it up to float rounding (allclose, not bit-equal).
    """
    T = deltas.shape[0]
    acc, a = deltas, coef
    d = 1
    while d < T:
        acc = torch.cat([torch.addcmul(acc[:-d], a[:-d], acc[d:]), acc[-d:]])
        if 2 * d < T:  # the last round's coefficients are not read again
            a = torch.cat([a[:-d] * a[d:], a[-d:]])
        d *= 2
    return acc


def brax_gae(rewards: torch.Tensor, values: torch.Tensor, bootstrap_value: torch.Tensor,
             discount: torch.Tensor, truncation: torch.Tensor, gamma: float,
             lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lambda-return value targets and one-step advantages over a (T, B) segment batch.

    rewards, values, discount (1 - terminated), truncation: (T, B); bootstrap_value: (B,)
    is V(next_obs of the last row). Rewards are expected already scaled.
    Returns (vs, advantages), both (T, B). Truncated rows get zero advantage and are
    excluded from the recursion (their ``m_t = 0``), exactly as Brax does. The recursion over
    T runs as :func:`reverse_linear_scan` (equal to Brax's step-by-step scan up to float
    rounding).
    """
    m = 1.0 - truncation
    g = gamma * discount
    values_next = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], 0)
    deltas = m * (rewards + g * values_next - values)
    vs = values + reverse_linear_scan(deltas, g * lam * m)
    vs_next = torch.cat([vs[1:], bootstrap_value.unsqueeze(0)], 0)
    advantages = m * (rewards + g * vs_next - values)
    return vs, advantages
