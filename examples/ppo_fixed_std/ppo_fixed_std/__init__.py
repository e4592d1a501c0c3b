"""PPO with a state-independent learned log-std: an out-of-tree GoRL-Bench baseline.

The actor outputs only the mean of u ~ N(mu(s), diag(exp(log_std))^2); ``log_std`` is one
learned parameter vector shared by all states, initialised to ``init_log_std`` (CleanRL's
``ppo_continuous_action.py``). Everything else -- envs, observation normalisation, the
critic, GAE, the clipped objective's optimisation loop, evaluation, action probes,
checkpoints/resume and the run directory -- is GoRL-Bench's shared core, so the only
difference to the built-in ``ppo`` is the policy's scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from baselines.config import PPOConfig
from gorl.core.gaussian_policy import clip_fraction, clipped_surrogate
from gorl.core.networks import gaussian_entropy, gaussian_log_prob, mlp, tanh_log_det_jacobian
from gorl.registry import Algorithm

PRESETS = Path(__file__).with_name("presets.yaml")


# 1. The config: every PPO hyperparameter, plus what this baseline adds. Each field has a
#    docstring (shown by `gorl-bench list` tooling and checked against the presets).
@dataclass
class FixedStdPPOConfig(PPOConfig):
    init_log_std: float = 0.0
    """Initial value of the state-independent log standard deviation (CleanRL: 0)."""
    log_std_min: float = -5.0
    """Lower clamp of log_std (keeps the ratio finite when the policy collapses)."""

    def validate(self) -> None:
        super().validate()
        if not self.log_std_min < self.init_log_std:
            from gorl.config import ConfigError
            raise ConfigError(f"init_log_std ({self.init_log_std}) must exceed log_std_min ({self.log_std_min})")


# 2. The policy: implements gorl.core.onpolicy.Agent (act, act_eval, policy_loss,
#    sample_actions) on top of the core's MLP builder and Gaussian helpers. Pre-actions are
#    unbounded; the trainer sends tanh(pre-action) to the env.
class FixedStdGaussianPolicy(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, cfg: FixedStdPPOConfig):
        super().__init__()
        self.mean = mlp(obs_dim, cfg.actor_hidden, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(cfg.init_log_std)))
        self.cfg = cfg

    def dist(self, obs_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.mean(obs_norm)
        cap = None if self.cfg.scale_cap is None else math.log(self.cfg.scale_cap)  # PPO's scale cap
        log_std = self.log_std.clamp(min=self.cfg.log_std_min, max=cap)
        return mean, log_std.exp().expand_as(mean)

    def act(self, obs_norm, obs_raw):
        mean, scale = self.dist(obs_norm)
        u = mean + scale * torch.randn_like(mean)
        return u, {"u": u, "logp": gaussian_log_prob(u, mean, scale)}  # stored for the ratio

    def act_eval(self, obs_norm, obs_raw):
        return self.dist(obs_norm)[0]  # deterministic evaluation: the mean

    def sample_actions(self, obs_norm, obs_raw, k):
        mean, scale = self.dist(obs_norm)
        return mean.unsqueeze(1) + scale.unsqueeze(1) * torch.randn(mean.shape[0], k, mean.shape[1],
                                                                    device=mean.device)

    def policy_loss(self, obs_norm, stored, advantages):
        mean, scale = self.dist(obs_norm)
        ratio = torch.exp(gaussian_log_prob(stored["u"], mean, scale) - stored["logp"])
        surrogate = clipped_surrogate(ratio, advantages, self.cfg.clip_eps)
        entropy = gaussian_entropy(scale)
        if self.cfg.entropy_tanh_correction:
            entropy = entropy + tanh_log_det_jacobian(mean + scale * torch.randn_like(mean))
        entropy = entropy.mean()
        info = {"surrogate": surrogate, "entropy": entropy, "log_std": self.log_std.mean().detach(),
                "approx_kl": ((ratio - 1) - torch.log(ratio)).mean().detach(),
                "clip_frac": clip_fraction(ratio, self.cfg.clip_eps)}
        return surrogate - self.cfg.entropy_coef * entropy, info


# 3. The training entry: the shared single-trainer loop does the rest (resume included).
def make_agent(cfg: FixedStdPPOConfig, obs_dim: int, act_dim: int) -> FixedStdGaussianPolicy:
    return FixedStdGaussianPolicy(obs_dim, act_dim, cfg)


def train(cfg: FixedStdPPOConfig, run):
    from gorl.core.loop import run_single_trainer
    return run_single_trainer(cfg, run, make_agent)


# 4. The registration: named by the entry point in pyproject.toml.
def algorithm() -> Algorithm:
    return Algorithm(name="ppo_fixed_std", config_cls=FixedStdPPOConfig, presets_file=PRESETS, train=train,
                     make_agent=make_agent, label="PPO (state-indep. std)", color=None, family="baseline",
                     description="Gaussian PPO with a state-independent learned log-std (CleanRL-style)")
