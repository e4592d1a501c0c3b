"""Baselines of the GoRL paper, each one module on the shared core: Gaussian PPO, FPO, DPPO."""
