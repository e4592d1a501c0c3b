"""One-step bandits with two good actions, for multimodality checks.

``GoRLBench/TwoModes-v0`` (use it as task ``gym:GoRLBench/TwoModes-v0``): one
observation (a constant 1), one action in [-1, 1], reward
exp(-(a - 0.7)^2 / (2 w^2)) + exp(-(a + 0.7)^2 / (2 w^2)) with w = 0.15, so a = -0.7
and a = +0.7 both earn ~1 and the middle earns ~0; the episode ends after one step.
A policy that can represent two modes keeps mass near both; a Gaussian must pick one
(or sit in the middle and earn nothing).

The family (``FAMILY``; every member is a ``ModeBandit``) varies one thing at a time:

| id | modes of a_0 | widths | heights | action dims |
|---|---|---|---|---|
| ``GoRLBench/TwoModes-v0`` | -0.7, +0.7 | 0.15 | 1, 1 | 1 |
| ``GoRLBench/TwoModesAsym-v0`` | -0.3, +0.8 | 0.15 | 1, 1 | 1 |
| ``GoRLBench/TwoModesNarrow-v0`` | -0.7, +0.7 | 0.07 | 1, 1 | 1 |
| ``GoRLBench/TwoModesWide-v0`` | -0.7, +0.7 | 0.3 | 1, 1 | 1 |
| ``GoRLBench/TwoModesUnequal-v0`` | -0.7, +0.7 | 0.15 | 1, 0.6 | 1 |
| ``GoRLBench/TwoModes2D-v0`` | -0.7, +0.7 | 0.15 | 1, 1 | 2 |
| ``GoRLBench/TwoModes3D-v0`` | -0.7, +0.7 | 0.15 | 1, 1 | 3 |

With more than one action dimension the extra dimensions are unimodal: the reward is the
two-mode term of a_0 times prod_j exp(-(a_j - 0.3)^2 / (2 * 0.3^2)) over j >= 1 (one best
value, 0.3, per extra dimension). Actions are clipped to [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

MODES = (-0.7, 0.7)
WIDTH = 0.15
ENV_ID = "GoRLBench/TwoModes-v0"
EXTRA_CENTER = 0.3
EXTRA_WIDTH = 0.3


@dataclass(frozen=True)
class Spec:
    """A family member: the two modes of action dimension 0 and the unimodal rest."""

    modes: tuple[float, float] = MODES
    widths: tuple[float, float] = (WIDTH, WIDTH)
    heights: tuple[float, float] = (1.0, 1.0)
    action_dim: int = 1

    def reward(self, a) -> np.ndarray | float:
        """Reward of actions ``a`` (..., action_dim) in [-1, 1] (or scalars / (...,) for one dimension)."""
        a = np.asarray(a, dtype=np.float64)
        if self.action_dim == 1 and (a.ndim == 0 or a.shape[-1] != 1):
            a = a[..., None]
        a0 = a[..., 0]
        r = sum(h * np.exp(-((a0 - m) ** 2) / (2 * w ** 2)) for m, w, h in zip(self.modes, self.widths, self.heights))
        for j in range(1, self.action_dim):
            r = r * np.exp(-((a[..., j] - EXTRA_CENTER) ** 2) / (2 * EXTRA_WIDTH ** 2))
        return r if np.ndim(r) else float(r)


FAMILY: dict[str, Spec] = {
    "GoRLBench/TwoModes-v0": Spec(),
    "GoRLBench/TwoModesAsym-v0": Spec(modes=(-0.3, 0.8)),
    "GoRLBench/TwoModesNarrow-v0": Spec(widths=(0.07, 0.07)),
    "GoRLBench/TwoModesWide-v0": Spec(widths=(0.3, 0.3)),
    "GoRLBench/TwoModesUnequal-v0": Spec(heights=(1.0, 0.6)),
    "GoRLBench/TwoModes2D-v0": Spec(action_dim=2),
    "GoRLBench/TwoModes3D-v0": Spec(action_dim=3),
}


class ModeBandit(gym.Env):
    """One step, constant observation 1, reward ``spec.reward(clip(action, -1, 1))``."""

    metadata = {"render_modes": []}

    def __init__(self, spec: Spec | None = None):
        self.task = spec or Spec()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.task.action_dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64).reshape(-1)[:self.task.action_dim], -1.0, 1.0)
        return np.ones(1, np.float32), float(self.task.reward(a)), True, False, {}


class TwoModes(ModeBandit):
    """The symmetric member (``GoRLBench/TwoModes-v0``)."""

    def __init__(self):
        super().__init__(FAMILY[ENV_ID])

    @staticmethod
    def reward(a: np.ndarray | float) -> np.ndarray | float:
        return sum(np.exp(-((a - m) ** 2) / (2 * WIDTH ** 2)) for m in MODES)


for _id, _spec in FAMILY.items():
    if _id not in gym.registry:
        if _id == ENV_ID:
            gym.register(_id, entry_point=TwoModes)
        else:
            gym.register(_id, entry_point=ModeBandit, kwargs={"spec": _spec})
