"""GoRL-Bench: GoRL and its baselines (Gaussian PPO, FPO, DPPO) on the DeepMind Control Suite."""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load_policy":  # imported on use: ``import gorl`` stays light (no torch)
        from gorl.policy import load_policy
        return load_policy
    raise AttributeError(f"module 'gorl' has no attribute {name!r}")


__all__ = ["load_policy", "__version__"]
