"""One host env from a task name: the leaf of the env routes.

``make_env(task, seed)`` builds a dm_control suite task (``domain-task``) or a Gymnasium env
(``gym:<id>``) with flat float32 observations and actions in [-1, 1]. Both the batch factory
(:func:`gorl.envs.registry.make_envs`, in-process) and the sharded workers
(:mod:`gorl.envs.sharded`, one process per shard) build their envs here, and this module
imports neither: a task name goes registry -> single, or registry -> sharded -> single.
(Playground tasks are batched on the device instead: :mod:`gorl.envs.playground`.)
"""
from __future__ import annotations

import gymnasium as gym

GYM_PREFIX = "gym:"


def make_env(task: str, seed: int | None = None) -> gym.Env:
    """One env with flat float32 observations and actions in [-1, 1]."""
    if task.startswith(GYM_PREFIX):
        from gorl.envs.gym_adapter import GymBoxEnv
        return GymBoxEnv(task[len(GYM_PREFIX):], seed=seed)
    from gorl.envs.dmc import DMCEnv
    domain, _, name = task.partition("-")
    return DMCEnv(domain, name, seed=seed)


def host_env_dims(task: str) -> tuple[int, int]:
    """(observation dim, action dim) of a host task, from one env (nothing stepped)."""
    env = make_env(task)
    try:
        return int(env.observation_space.shape[0]), int(env.action_space.shape[0])
    finally:
        env.close()
