"""Gaussian PPO, Brax/Playground configuration (spec section 3).

u ~ N(mu(s), sigma(s)); the env receives tanh(u); clipped ratio over log N(u);
entropy bonus with the tanh correction; actor 32x4, critic 256x5, one Adam.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gorl.config import defaults_from
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.core.onpolicy import OnPolicyConfig, OnPolicyTrainer
from gorl.core.run import Run
from gorl.registry import Algorithm

PRESETS = Path(__file__).with_name("presets") / "ppo.yaml"


@dataclass
@defaults_from(PRESETS)
class PPOConfig(OnPolicyConfig):
    actor_hidden: list[int]
    """Actor hidden layers; the actor outputs mean and pre-scale (2 x d_a)."""
    clip_eps: float
    """PPO clipping epsilon."""
    entropy_coef: float
    """Entropy bonus coefficient."""
    entropy_tanh_correction: bool
    """Add the log(1 - tanh^2) term: entropy of the squashed action (reference)."""
    scale_cap: float | None
    """Upper clip of the policy scale (GoRL's copy clips at 10; FPO's copy does not)."""


def make_agent(cfg: PPOConfig, obs_dim: int, act_dim: int) -> GaussianPolicy:
    return GaussianPolicy(obs_dim, act_dim, cfg.actor_hidden, clip_eps=cfg.clip_eps,
                          entropy_coef=cfg.entropy_coef, entropy_tanh_correction=cfg.entropy_tanh_correction,
                          scale_cap=cfg.scale_cap)


def train(cfg: PPOConfig, run: Run) -> OnPolicyTrainer:
    from gorl.core.loop import run_single_trainer
    return run_single_trainer(cfg, run, make_agent)


ALGORITHM = Algorithm(name="ppo", config_cls=PPOConfig, presets_file=PRESETS, train=train, label="Gaussian PPO",
                      color="#949494", family="baseline",
                      description="Gaussian PPO, Brax/Playground configuration (spec 3)", make_agent=make_agent)


TEACHER_PRESETS = PRESETS.with_name("ppo_teacher.yaml")


@dataclass
@defaults_from(TEACHER_PRESETS)
class PPOTeacherConfig(PPOConfig):
    """PPO with the teacher's budget and evaluations (gorl/algorithm/teacher.py); its presets
    extend PPO's (``base: ppo:PRESET``)."""


TEACHER = Algorithm(name="ppo_teacher", config_cls=PPOTeacherConfig, presets_file=TEACHER_PRESETS, train=train,
                    label="PPO teacher", color="#56b4e9", family="teacher",
                    description="PPO as GoRL's teacher (humanoid profile, spec 14); GoRL runs read it (teacher_run)",
                    make_agent=make_agent)
