"""MuJoCo's integration state: what continues a simulation exactly (``mjSTATE_INTEGRATION``:
time, positions, velocities, actuator activations, the solver's warm start, controls, applied
forces, mocap, equality flags, user data, plug-in state), as one float64 array. The dm_control
envs (:mod:`gorl.envs.dmc`) and Gymnasium's MuJoCo envs (:mod:`gorl.envs.gym_adapter`) save it
in their checkpoints."""
from __future__ import annotations

import mujoco
import numpy as np

SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


def get_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    state = np.empty(mujoco.mj_stateSize(model, SPEC), np.float64)
    mujoco.mj_getState(model, data, state, SPEC)
    return state


def set_state(model: mujoco.MjModel, data: mujoco.MjData, state: np.ndarray) -> None:
    """``state`` (from :func:`get_state` on the same model) into ``data``; the derived quantities
    (positions of bodies, contacts, ...) are left to the caller's forward pass."""
    mujoco.mj_setState(model, data, np.asarray(state, np.float64), SPEC)
