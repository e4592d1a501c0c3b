"""Gaussian PPO, Brax/Playground configuration (spec section 3).

u ~ N(mu(s), sigma(s)); the env receives tanh(u); clipped ratio over log N(u);
entropy bonus with the tanh correction; actor 32x4, critic 256x5, one Adam.
Settings: ``PPOConfig`` (baselines/config.py); also the teacher's algorithm (``ppo_teacher``).
"""
from __future__ import annotations

from baselines.config import PPOConfig
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run


def make_agent(cfg: PPOConfig, obs_dim: int, act_dim: int) -> GaussianPolicy:
    return GaussianPolicy(obs_dim, act_dim, cfg.actor_hidden, clip_eps=cfg.clip_eps,
                          entropy_coef=cfg.entropy_coef, entropy_tanh_correction=cfg.entropy_tanh_correction,
                          scale_cap=cfg.scale_cap)


def train(cfg: PPOConfig, run: Run) -> OnPolicyTrainer:
    from gorl.core.loop import run_single_trainer
    return run_single_trainer(cfg, run, make_agent)
