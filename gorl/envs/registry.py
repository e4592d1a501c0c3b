"""Task names -> env constructors, validated before anything is built."""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Sequence

import gymnasium as gym

if TYPE_CHECKING:
    import torch

from gorl.envs.names import PLAYGROUND_PREFIX, SUITE_NAMES
from gorl.envs.single import GYM_PREFIX, host_env_dims, make_env
from gorl.errors import TaskError, did_you_mean

__all__ = ["PAPER_TASKS", "GYM_PREFIX", "PLAYGROUND_PREFIX", "check_task", "env_dims", "list_suite_tasks",
           "make_env", "make_envs"]

PAPER_TASKS = ("cheetah-run", "finger-spin", "finger-turn_hard", "fish-swim", "hopper-stand", "walker-walk",
               "humanoid-stand", "humanoid-run")
def list_suite_tasks() -> list[str]:
    from dm_control import suite
    return [f"{d}-{t}" for d, t in suite.ALL_TASKS]


def check_task(task: str, imports: tuple[str, ...] = ()) -> None:
    """Raise :class:`TaskError` (a ValueError) naming ``task`` if the suite cannot train on it:
    not a known suite task or Playground task (or the playground extra is missing), not a
    registered gym id, or a gym env whose spaces the adapter cannot present (builds the gym
    env once, steps nothing)."""
    if task.startswith(PLAYGROUND_PREFIX):
        if task[len(PLAYGROUND_PREFIX):] in SUITE_NAMES and importlib.util.find_spec("mujoco_playground"):
            return  # a name the suite ships settings for: known without importing Playground (~5 s)
        from gorl.envs import playground
        try:
            names = playground.task_names()
        except playground.PlaygroundUnavailable as e:
            raise TaskError(f"task {task!r}: {e}") from None
        name = task[len(PLAYGROUND_PREFIX):]
        if name not in names:
            raise TaskError(f"unknown Playground task {task!r}{did_you_mean(name, names, PLAYGROUND_PREFIX)}; Playground's DM Control Suite "
                             f"tasks: {', '.join(names)}")
        return
    if task.startswith(GYM_PREFIX):
        for mod in imports:
            importlib.import_module(mod)
        env_id = task[len(GYM_PREFIX):]
        if not env_id:
            raise TaskError(f"task {task!r} names no env: use 'gym:<id>', e.g. gym:Pendulum-v1")
        try:
            gym.spec(env_id)
        except Exception as e:  # gymnasium raises several error types here
            raise TaskError(f"unknown gymnasium env {env_id!r} in task {task!r}: {_one_line(e)}") from None
        from gorl.envs.gym_adapter import check_spaces
        try:
            env = gym.make(env_id)
        except Exception as e:  # noqa: BLE001 - a broken third-party env is bad input
            raise TaskError(f"task {task!r}: gymnasium.make({env_id!r}) failed: {_one_line(e)}") from None
        try:
            check_spaces(task, env)
        finally:
            env.close()
        return
    tasks = list_suite_tasks()
    if task not in tasks:
        raise TaskError(f"unknown task {task!r}{did_you_mean(task, tasks)}; use a dm_control suite 'domain-task' name "
                        f"such as {', '.join(PAPER_TASKS)}, 'playground:<Name>' or 'gym:<id>'")


def make_envs(task: str, seeds: Sequence[int], device: torch.device | str = "cpu", workers: int = 0,
              imports: Sequence[str] = ()):
    """``len(seeds)`` envs of ``task``, reset with ``seeds``, speaking torch tensors on ``device``:
    Playground tasks as one batched JAX state on JAX's device; every other task as host envs
    (:class:`gorl.envs.vector.TorchVecEnv`), stepped in-process (``workers`` 0) or sharded over
    ``workers`` processes (:mod:`gorl.envs.sharded`)."""
    if task.startswith(PLAYGROUND_PREFIX):
        from gorl.envs.playground import PlaygroundEnvs
        return PlaygroundEnvs(task, seeds, device)
    from gorl.envs.vector import TorchVecEnv, VectorEnv
    if workers > 0:
        from gorl.envs.sharded import ShardedVectorEnv
        return TorchVecEnv(ShardedVectorEnv(task, seeds, workers, tuple(imports)), device)
    venv = VectorEnv([lambda s=s: make_env(task, s) for s in seeds])
    venv.reset(seeds)
    return TorchVecEnv(venv, device)


def env_dims(task: str) -> tuple[int, int]:
    """(observation dim, action dim) of ``task`` without stepping (or compiling) anything."""
    if task.startswith(PLAYGROUND_PREFIX):
        from gorl.envs.playground import dims
        return dims(task)
    return host_env_dims(task)


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"
