"""A diagonal-Gaussian policy trained with the clipped PPO objective.

Used as-is by Gaussian PPO (the Gaussian is over the pre-action) and by GoRL's encoder
(the Gaussian is over the latent z and a frozen ``decode(obs_raw, z)`` maps it to a
pre-action; the ratio is over z only, spec 6.1-6.2).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from gorl.core.networks import GaussianHead, gaussian_entropy, gaussian_log_prob, tanh_log_det_jacobian

Decode = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """-mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)); ratio may carry extra
    trailing sample dims (FPO's per-sample ratios, DPPO's per-step ratios)."""
    while adv.dim() < ratio.dim():
        adv = adv.unsqueeze(-1)
    return -torch.min(ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv).mean()


def clip_fraction(ratio: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Share of the ratios outside [1 - eps, 1 + eps] (logged as ``clip_frac``)."""
    return ((ratio - 1).abs() > clip_eps).float().mean()


class GaussianPolicy(nn.Module):
    def __init__(self, obs_dim: int, out_dim: int, hidden: Sequence[int], *, clip_eps: float,
                 entropy_coef: float, entropy_tanh_correction: bool, scale_cap: float | None = 10.0,
                 latent_reg_coef: float = 0.0, latent_reg: str = "l2", decode: Decode | None = None):
        super().__init__()
        self.actor = GaussianHead(obs_dim, out_dim, hidden, scale_cap=scale_cap)
        self.clip_eps = clip_eps
        self.entropy_coef = entropy_coef
        self.entropy_tanh_correction = entropy_tanh_correction
        self.latent_reg_coef = latent_reg_coef
        if latent_reg not in ("l2", "kl"):
            raise ValueError(f"latent_reg must be 'l2' or 'kl', got {latent_reg!r}")
        self.latent_reg = latent_reg
        self.decode = decode  # not a submodule: frozen, owned by the caller

    def _decode(self, obs_raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x if self.decode is None else self.decode(obs_raw, x)

    def act(self, obs_norm, obs_raw):
        mean, scale = self.actor(obs_norm)
        x = mean + scale * torch.randn_like(mean)
        return self._decode(obs_raw, x), {"x": x, "logp": gaussian_log_prob(x, mean, scale)}

    def act_eval(self, obs_norm, obs_raw):
        mean, _ = self.actor(obs_norm)
        return self._decode(obs_raw, mean)

    def sample_actions(self, obs_norm, obs_raw, k):
        mean, scale = self.actor(obs_norm)
        x = mean.unsqueeze(1) + scale.unsqueeze(1) * torch.randn(mean.shape[0], k, mean.shape[1],
                                                                  device=mean.device)
        raw = obs_raw.unsqueeze(1).expand(-1, k, -1).reshape(-1, obs_raw.shape[-1])
        return self._decode(raw, x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def policy_loss(self, obs_norm, stored, advantages):
        mean, scale = self.actor(obs_norm)
        logp = gaussian_log_prob(stored["x"], mean, scale)
        log_ratio = logp - stored["logp"]
        ratio = torch.exp(log_ratio)
        surrogate = clipped_surrogate(ratio, advantages, self.clip_eps)
        entropy = gaussian_entropy(scale)
        if self.entropy_tanh_correction:
            # one-sample estimate of the tanh-squashed action's entropy (spec 3)
            entropy = entropy + tanh_log_det_jacobian(mean + scale * torch.randn_like(mean))
        entropy = entropy.mean()
        loss = surrogate - self.entropy_coef * entropy
        info = {"surrogate": surrogate, "entropy": entropy,
                # k3 estimator in log space: finite where the ratio underflows to 0 (which
                # the clipped loss handles; log(0) here once ended runs as "diverged")
                "approx_kl": (ratio - 1 - log_ratio).mean().detach(),
                "clip_frac": clip_fraction(ratio, self.clip_eps)}
        if self.latent_reg_coef:
            if self.latent_reg == "l2":  # the reference code's term (spec 6.2)
                reg = mean.pow(2).mean() + scale.pow(2).mean()
            else:  # exact KL(N(mu, sigma) || N(0, I)), mean over entries
                reg = 0.5 * (mean.pow(2) + scale.pow(2) - 1.0 - 2.0 * scale.log()).mean()
            loss = loss + self.latent_reg_coef * reg
            info["latent_reg"] = reg
        return loss, info
