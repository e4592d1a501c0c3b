"""Registration of the built-in algorithms (the only place they are listed)."""
from __future__ import annotations

from gorl.registry import Algorithm, register

from baselines import ppo

register(Algorithm(name="ppo", config_cls=ppo.PPOConfig, presets_file=ppo.PRESETS, train=ppo.train,
                   label="Gaussian PPO", color="#949494", family="baseline",
                   description="Gaussian PPO, Brax/Playground configuration (spec 3)"))

from baselines import dppo, fpo  # noqa: E402

register(Algorithm(name="fpo", config_cls=fpo.FPOConfig, presets_file=fpo.PRESETS, train=fpo.train,
                   label="FPO", color="#de8f05", family="baseline",
                   description="Flow Policy Optimization, CFM-loss ratio (spec 4)"))
register(Algorithm(name="dppo", config_cls=dppo.DPPOConfig, presets_file=dppo.PRESETS, train=dppo.train,
                   label="DPPO", color="#029e73", family="baseline",
                   description="DPPO as in the GoRL code: per-denoising-step PPO ratio (spec 5)"))
