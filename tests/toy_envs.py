"""Tiny Gymnasium envs for tests (imported with ``--import toy_envs``)."""
import gymnasium as gym
import numpy as np


class NaNAfter(gym.Env):
    """Returns a NaN reward after ``n`` steps: drives the training losses non-finite."""

    def __init__(self, n: int = 300):
        self.observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
        self.action_space = gym.spaces.Box(-2, 2, (2,), np.float32)
        self.n, self.t = n, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        r = float("nan") if self.t > self.n else float(-np.square(action).sum())
        return self.np_random.uniform(-1, 1, 3).astype(np.float32), r, False, self.t % 50 == 0, {}


class TerminatesAt(gym.Env):
    """Terminates (not truncates) after 5 steps."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.full(2, self.t, np.float32), 1.0, self.t >= 5, False, {}


class Unbounded(TerminatesAt):
    """Box actions without bounds: [-1, 1] cannot be mapped onto them."""

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class DictActions(TerminatesAt):
    """A Dict action space (not a Box)."""

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (1,), np.float32)})


gym.register("Test/NaNAfter-v0", entry_point=NaNAfter)
gym.register("Test/TerminatesAt-v0", entry_point=TerminatesAt)
gym.register("Test/Unbounded-v0", entry_point=Unbounded)
gym.register("Test/DictActions-v0", entry_point=DictActions)


class RaisesAfter(NaNAfter):
    """A user's env with a bug: raises after ``n`` steps (per env)."""

    def step(self, action):
        if self.t >= self.n:
            raise RuntimeError("sensor cable unplugged")
        return super().step(action)


gym.register("Test/RaisesAfter-v0", entry_point=RaisesAfter, kwargs={"n": 500})
