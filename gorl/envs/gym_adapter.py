"""Any registered Gymnasium env with a Box action space, presented like the suite envs:
flat float32 observations, actions in [-1, 1] (rescaled to the env's bounds)."""
from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np


class GymBoxEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, env_id: str, seed: int | None = None):
        self.task_name = f"gym:{env_id}"
        env = gym.make(env_id)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"gym:{env_id} has action space {env.action_space}; only Box actions are supported")
        lo, hi = env.action_space.low, env.action_space.high
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError(f"gym:{env_id} has an unbounded action space; cannot map [-1, 1] onto it")
        self._env = env
        self._lo, self._hi = lo.astype(np.float64), hi.astype(np.float64)
        self._obs_space = env.observation_space
        obs_dim = int(gym.spaces.flatdim(env.observation_space))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)
        self.max_episode_steps = env.spec.max_episode_steps if env.spec else None
        self._seed = seed

    def _flat(self, obs) -> np.ndarray:
        return np.asarray(gym.spaces.flatten(self._obs_space, obs), np.float32)

    def reset(self, *, seed: int | None = None, options=None):
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        obs, info = self._env.reset(seed=seed, options=options)
        return self._flat(obs), info

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        a = (self._lo + (a + 1.0) * 0.5 * (self._hi - self._lo)).astype(self._env.action_space.dtype)
        obs, r, term, trunc, info = self._env.step(a)
        return self._flat(obs), float(r), bool(term), bool(trunc), info

    def get_state(self) -> dict:
        # Generic Gymnasium envs have no state API; pickling the env covers the pure-Python
        # ones (classic control). Others fall back to a fresh reset on resume.
        try:
            return {"pickle": pickle.dumps(self._env)}
        except Exception:
            return {"pickle": None}

    def set_state(self, st: dict) -> None:
        if st.get("pickle") is not None:
            self._env = pickle.loads(st["pickle"])
