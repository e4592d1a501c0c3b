"""Any registered Gymnasium env with a bounded Box action space, presented like the suite
envs: flat float32 observations, actions in [-1, 1] (rescaled to the env's bounds).

The adapter is itself a well-behaved Gymnasium env (``gymnasium.utils.env_checker.check_env``
passes): ``reset(seed=...)`` seeds through ``gym.Env.reset`` and the wrapped env.
"""
from __future__ import annotations

import copy
import sys

import gymnasium as gym
import numpy as np

from gorl import plaindata
from gorl.errors import TaskError


def check_spaces(task: str, env: gym.Env) -> None:
    """Raise :class:`TaskError` if ``env``'s spaces cannot be presented as flat float32 obs and [-1, 1] actions."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise TaskError(f"task {task!r} has action space {type(space).__name__} ({space}); only bounded Box "
                        f"(continuous) action spaces are supported")
    if len(space.shape) != 1:
        raise TaskError(f"task {task!r} has Box actions of shape {space.shape}; only flat (1-D) actions are supported")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise TaskError(f"task {task!r} has an unbounded Box action space ({space}); cannot map [-1, 1] onto it")
    try:
        dim = gym.spaces.flatdim(env.observation_space)
    except Exception as e:  # noqa: BLE001 - spaces gymnasium cannot flatten
        raise TaskError(f"task {task!r}: observation space {env.observation_space} cannot be flattened: {e}") from None
    if dim <= 0:
        raise TaskError(f"task {task!r} has an empty observation space")


class GymBoxEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, env_id: str, seed: int | None = None):
        self.task_name = f"gym:{env_id}"
        env = gym.make(env_id)
        check_spaces(self.task_name, env)
        self._env = env
        lo, hi = env.action_space.low, env.action_space.high
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
        super().reset(seed=seed)
        if seed is not None:  # the spaces' own samplers follow the seed too
            self.action_space.seed(seed)
        obs, info = self._env.reset(seed=seed, options=options)
        return self._flat(obs), info

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        a = (self._lo + (a + 1.0) * 0.5 * (self._hi - self._lo)).astype(self._env.action_space.dtype)
        obs, r, term, trunc, info = self._env.step(a)
        return self._flat(obs), float(r), bool(term), bool(trunc), info

    def close(self):
        self._env.close()

    def get_state(self) -> dict:
        """The wrapped env's attributes, through its wrappers, as plain data
        (:func:`gorl.plaindata.object_state`), exact for pure-Python envs (classic control, the
        toy bandits); for Gymnasium's MuJoCo envs (``MujocoEnv``) the simulator's integration
        state too (:mod:`gorl.envs.mjstate`), its model, data and renderer objects left as
        construction made them (an env that changes its model per episode, e.g. randomised
        masses, resumes with the model as built). An env holding any other object without plain state (e.g. a
        simulator's extension object) has ``"env": None`` and falls back to a fresh reset on resume."""
        sim = _mujoco_env(self._env)
        try:
            env = plaindata.object_state(self._env, "env", kept=_simulator_types() if sim is not None else ())
        except plaindata.NotPlain:
            env = None
        st = {"env": env, "np_random": copy.deepcopy(self._np_random), "seed": self._seed}
        if env is not None and sim is not None:
            from gorl.envs import mjstate
            st["mj_state"] = mjstate.get_state(sim.model, sim.data)
        return st

    def set_state(self, st: dict) -> None:
        if "pickle" in st:  # a checkpoint of an older version (train --trust-checkpoint)
            if st["pickle"] is not None:
                import pickle
                self._env = pickle.loads(st["pickle"])
        elif st.get("env") is not None:
            plaindata.restore_object(self._env, st["env"], "env")
            if "mj_state" in st:
                import mujoco

                from gorl.envs import mjstate
                sim = self._env.unwrapped
                mjstate.set_state(sim.model, sim.data, st["mj_state"])
                mujoco.mj_forward(sim.model, sim.data)
        if st.get("np_random") is not None:  # a copy: a saved state may be restored again (fixed_initial)
            self._np_random = copy.deepcopy(st["np_random"])
        if "seed" in st:  # the seed the next unseeded reset uses, if not used yet
            self._seed = st["seed"]


def _mujoco_env(env: gym.Env):
    """The Gymnasium ``MujocoEnv`` under ``env``'s wrappers, or None (its module is imported
    only when such an env was made: other envs do not import MuJoCo here)."""
    module = sys.modules.get("gymnasium.envs.mujoco.mujoco_env")
    return env.unwrapped if module is not None and isinstance(env.unwrapped, module.MujocoEnv) else None


def _simulator_types() -> tuple[type, ...]:
    """What a ``MujocoEnv`` holds that has no plain state: its model, data and renderer."""
    import mujoco
    from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer
    return mujoco.MjModel, mujoco.MjData, MujocoRenderer
