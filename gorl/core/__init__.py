"""Shared machinery: networks, observation normalisation, advantages, the PPO loop, run I/O."""
