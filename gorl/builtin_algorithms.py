"""Registration of the built-in algorithms (the only place they are listed)."""
from __future__ import annotations

import baselines

from gorl.registry import Algorithm, register

if not getattr(baselines, "GORL_BENCH", False):
    raise ImportError(
        f"the package 'baselines' resolves to {getattr(baselines, '__file__', None) or list(baselines.__path__)}, "
        "not to GoRL-Bench's baselines/ (another package of that name, e.g. OpenAI's baselines, comes first "
        "on sys.path); uninstall it or use a separate environment")

from baselines import ppo  # noqa: E402

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

from gorl import algorithm as gorl_algorithm  # noqa: E402

register(Algorithm(name="gorl_fm", config_cls=gorl_algorithm.GoRLConfig, presets_file=gorl_algorithm.gorl.PRESETS,
                   train=gorl_algorithm.train, label="GoRL (FM)", color="#0173b2", family="gorl",
                   description="GoRL, latent PPO encoder + flow-matching decoder (spec 6)"))
register(Algorithm(name="gorl_diffusion", config_cls=gorl_algorithm.GoRLDiffusionConfig,
                   presets_file=gorl_algorithm.gorl.PRESETS, train=gorl_algorithm.train,
                   label="GoRL (Diffusion)", color="#d55e00", family="gorl",
                   description="GoRL, latent PPO encoder + diffusion decoder (spec 6)"))
