"""A one-step bandit with two equally good actions, for multimodality checks.

``GoRLBench/TwoModes-v0`` (use it as task ``gym:GoRLBench/TwoModes-v0``): one
observation (a constant 1), one action in [-1, 1], reward
exp(-(a - 0.7)^2 / (2 w^2)) + exp(-(a + 0.7)^2 / (2 w^2)) with w = 0.15, so a = -0.7
and a = +0.7 both earn ~1 and the middle earns ~0; the episode ends after one step.
A policy that can represent two modes keeps mass near both; a Gaussian must pick one
(or sit in the middle and earn nothing).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

MODES = (-0.7, 0.7)
WIDTH = 0.15
ENV_ID = "GoRLBench/TwoModes-v0"


class TwoModes(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    @staticmethod
    def reward(a: np.ndarray | float) -> np.ndarray | float:
        return sum(np.exp(-((a - m) ** 2) / (2 * WIDTH ** 2)) for m in MODES)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        a = float(np.clip(np.asarray(action, np.float64).reshape(-1)[0], -1.0, 1.0))
        return np.ones(1, np.float32), float(self.reward(a)), True, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=TwoModes)
