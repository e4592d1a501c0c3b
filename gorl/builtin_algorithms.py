"""Registration of the built-in algorithms (the only place they are listed)."""
from __future__ import annotations

from gorl.registry import Algorithm, register

from baselines import ppo

register(Algorithm(name="ppo", config_cls=ppo.PPOConfig, presets_file=ppo.PRESETS, train=ppo.train,
                   label="Gaussian PPO", color="#949494", family="baseline",
                   description="Gaussian PPO, Brax/Playground configuration (spec 3)"))
