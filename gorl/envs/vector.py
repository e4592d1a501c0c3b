"""In-process vector env with same-step auto-reset.

Why in-process: on a 2-core machine worker processes do not pay (Gymnasium's
AsyncVectorEnv gained at most 1.2x at ~300 us per round trip), while independent runs
scale 2x; so one run steps its envs in a loop and parallelism comes from one
single-threaded run per core under Snakemake (benchmarks/bench_envs.py measures this).

``step`` returns ``final_obs``: the true next observation of every env (before any
reset), which is what value bootstrapping at a truncation needs, and ``obs``: the
observation to act on next (the reset observation where an episode ended).
"""
from __future__ import annotations

from typing import Callable, Sequence

import gymnasium as gym
import numpy as np
import torch


class VectorEnv:
    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]):
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        e0 = self.envs[0]
        self.obs_dim = int(e0.observation_space.shape[0])
        self.action_dim = int(e0.action_space.shape[0])
        self._obs = np.zeros((self.num_envs, self.obs_dim), np.float32)
        self.physics_errors = 0
        self._first: list[dict] | None = None  # reset_mode fixed_initial: each env's first state
        self._first_obs: np.ndarray | None = None

    def fix_initial_states(self) -> None:
        """From now on an ended episode restores the env's current state instead of a fresh
        reset (the reference's auto-reset, spec 2.3); called right after the seeded first reset,
        so the states are the same in a resumed run."""
        first = [e.get_state() for e in self.envs]
        if any("env" in st and st["env"] is None for st in first):  # a gym env without plain state
            raise ValueError("reset_mode fixed_initial needs envs whose state can be saved exactly "
                             "(dm_control suite tasks, pure-Python gym envs)")
        self._first, self._first_obs = first, self._obs.copy()

    def remove_time_limit(self) -> None:
        """No truncation at the env's time limit (dm_control suite tasks only)."""
        for e in self.envs:
            if not hasattr(e, "remove_time_limit"):
                raise ValueError(f"{type(e).__name__} has no time limit that can be removed "
                                 f"(decoder_collection reference needs dm_control suite tasks)")
            e.remove_time_limit()

    def reset(self, seeds: Sequence[int] | None = None) -> np.ndarray:
        for i, env in enumerate(self.envs):
            self._obs[i], _ = env.reset(seed=None if seeds is None else int(seeds[i]))
        return self._obs.copy()

    def step(self, actions: np.ndarray):
        n = self.num_envs
        final_obs = np.empty_like(self._obs)
        rewards = np.empty(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        for i, env in enumerate(self.envs):
            o, r, te, tr, info = env.step(actions[i])
            final_obs[i] = o
            rewards[i] = r
            terminated[i] = te
            truncated[i] = tr and not te
            if te or tr:
                if "physics_error" in info:
                    self.physics_errors += 1
                if self._first is None:
                    o, _ = env.reset()
                else:
                    env.set_state(self._first[i])
                    o = self._first_obs[i]
            self._obs[i] = o
        return self._obs.copy(), rewards, terminated, truncated, final_obs

    def get_state(self) -> dict:
        return {"obs": self._obs.copy(), "envs": [e.get_state() for e in self.envs],
                "physics_errors": self.physics_errors}

    def set_state(self, st: dict) -> None:
        for e, s in zip(self.envs, st["envs"]):
            e.set_state(s)
        self._obs[...] = st["obs"]
        self.physics_errors = st["physics_errors"]

    @property
    def obs(self) -> np.ndarray:
        return self._obs.copy()


class TorchVecEnv:
    """A host vector env (numpy) presented as the trainer sees every env set: torch tensors on
    ``device`` in and out. One host<->device copy per step; :class:`gorl.envs.playground.
    PlaygroundEnvs` implements the same interface with the envs on the device.

    ``step(actions)`` -> ``obs, reward, terminated, truncated, final_obs`` (float32, float32,
    bool, bool, float32); ``obs``; ``reset(seeds)``; ``get_state``/``set_state``;
    ``physics_errors``; ``num_envs``, ``obs_dim``, ``action_dim``.
    """

    def __init__(self, host, device: torch.device | str = "cpu"):
        self.host = host
        self.device = torch.device(device)
        self.num_envs, self.obs_dim, self.action_dim = host.num_envs, host.obs_dim, host.action_dim

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.device)

    def reset(self, seeds: Sequence[int] | None = None) -> torch.Tensor:
        return self._t(self.host.reset(seeds))

    @property
    def obs(self) -> torch.Tensor:
        return self._t(self.host.obs)

    def step(self, actions: torch.Tensor):
        obs, reward, term, trunc, final_obs = self.host.step(actions.detach().cpu().numpy())
        return self._t(obs), self._t(reward), self._t(term), self._t(trunc), self._t(final_obs)

    @property
    def physics_errors(self) -> int:
        return self.host.physics_errors

    def get_state(self) -> dict:
        return self.host.get_state()

    def set_state(self, st: dict) -> None:
        self.host.set_state(st)

    def fix_initial_states(self) -> None:
        self.host.fix_initial_states()

    def remove_time_limit(self) -> None:
        self.host.remove_time_limit()

    def close(self) -> None:
        close = getattr(self.host, "close", None)
        if close is not None:
            close()
