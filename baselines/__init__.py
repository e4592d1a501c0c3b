"""Baselines of the GoRL paper, each one module on the shared core: Gaussian PPO, FPO, DPPO."""

GORL_BENCH = True  # marks this package as ours: OpenAI's `baselines` has the same top-level name
