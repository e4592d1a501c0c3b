"""Task names -> env constructors, validated before anything is built."""
from __future__ import annotations

import difflib
import importlib

import gymnasium as gym

from gorl.errors import TaskError

PAPER_TASKS = ("cheetah-run", "finger-spin", "finger-turn_hard", "fish-swim", "hopper-stand", "walker-walk")
GYM_PREFIX = "gym:"


def list_suite_tasks() -> list[str]:
    from dm_control import suite
    return [f"{d}-{t}" for d, t in suite.ALL_TASKS]


def _split(task: str) -> tuple[str, str]:
    domain, _, name = task.partition("-")
    return domain, name


def check_task(task: str, imports: tuple[str, ...] = ()) -> None:
    """Raise :class:`TaskError` (a ValueError) naming ``task`` if the suite cannot train on it:
    not a known suite task, not a registered gym id, or a gym env whose spaces the adapter
    cannot present (builds the gym env once, steps nothing)."""
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
        hint = difflib.get_close_matches(task, tasks, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise TaskError(f"unknown task {task!r}{extra}; use a dm_control suite 'domain-task' name "
                         f"such as {', '.join(PAPER_TASKS)}, or 'gym:<id>'")


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def make_env(task: str, seed: int | None = None) -> gym.Env:
    """One env with flat float32 observations and actions in [-1, 1]."""
    if task.startswith(GYM_PREFIX):
        from gorl.envs.gym_adapter import GymBoxEnv
        return GymBoxEnv(task[len(GYM_PREFIX):], seed=seed)
    from gorl.envs.dmc import DMCEnv
    domain, name = _split(task)
    return DMCEnv(domain, name, seed=seed)
