"""Environments: every dm_control suite task (``domain-task``) and any Gymnasium Box-action
env (``gym:<id>``), as Gymnasium envs with flat float32 observations and actions in [-1, 1].

``make_env(task, seed)`` builds one env; ``VectorEnv`` steps many in-process (see
:mod:`gorl.envs.vector` for why in-process).
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "disable")

from gorl.envs.registry import PAPER_TASKS, check_task, env_dims, list_suite_tasks, make_env, make_envs  # noqa: E402
from gorl.envs import toy  # noqa: E402,F401  (registers gym:GoRLBench/TwoModes-v0)


def __getattr__(name: str):
    if name == "VectorEnv":  # imported on use: checking a task name needs no torch
        from gorl.envs.vector import VectorEnv
        return VectorEnv
    raise AttributeError(f"module 'gorl.envs' has no attribute {name!r}")


__all__ = ["PAPER_TASKS", "check_task", "list_suite_tasks", "env_dims", "make_env", "make_envs", "VectorEnv"]
