"""GoRL-Bench: GoRL and its baselines (Gaussian PPO, FPO, DPPO) on the DeepMind Control Suite."""

__version__ = "0.1.0"
