"""A thin Gymnasium wrapper straight over ``dm_control.suite``.

Why not shimmy: shimmy's ``DmControlCompatibilityV0`` costs ~30% of the step rate
(measured in benchmarks/bench_envs.py); this wrapper does only what the suite needs:
flatten the observation dict to float32, map [-1, 1] actions to the action spec, and
report dm_control's time limit (``TimeStep.last()`` with discount 1) as truncation and a
zero-discount last step as termination. A diverged simulation (``PhysicsError``) ends
the episode as terminated with zero reward and ``info['physics_error']``.

``get_state``/``set_state`` capture everything that continues an episode exactly
(MuJoCo integration state, the task object's attributes with its RNG, the model fields tasks
randomise per episode, the step counter) in a few KB of tensors and plain data, for
checkpoint/resume (:mod:`gorl.plaindata`: every suite task's attributes are numbers, strings,
lists, numpy arrays and a ``RandomState``).
"""
from __future__ import annotations

import logging

import gymnasium as gym
import mujoco
import numpy as np
from dm_control import suite
from dm_control.rl import control

from gorl import plaindata
from gorl.envs import mjstate


class _DropSettotalmass(logging.Filter):
    """dm_control 1.0.50's own cheetah/hopper XML use a deprecated MuJoCo attribute; MuJoCo
    warns once per model load through absl. Nothing we can act on: keep logs readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "settotalmass" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropSettotalmass())

# Every suite model includes common/skybox.xml, an 800x800 six-face builtin texture: 11.5 MB of
# the 11.8 MB model buffer, per env. Nothing here renders, so the texture is shrunk to 8x8
# before any model is compiled (physics is untouched: textures are visual only). This makes
# an env ~1 MB instead of ~12.5 MB, which is what lets the paper preset's 2048 envs fit in
# memory (24 GB before). It changes how dm_control renders the sky in this process.
_SKYBOX = "./common/skybox.xml"
if _SKYBOX in suite.common.ASSETS:
    suite.common.ASSETS[_SKYBOX] = suite.common.ASSETS[_SKYBOX].replace(
        b'width="800" height="800"', b'width="8" height="8"')

# Model fields that suite tasks change per episode (targets, colours, sizes, point_mass-hard's
# actuation directions wrap_prm, quadruped-escape's terrain hfield_data). Checked by comparing
# every array field of the model between episodes of every task in suite.ALL_TASKS (dm_control
# 1.0.50): no task changes a model field while stepping, nor model.opt.
_MODEL_FIELDS = ("body_pos", "body_quat", "geom_pos", "geom_quat", "geom_size", "geom_rgba",
                 "site_pos", "site_quat", "site_size", "site_rgba", "mat_rgba", "light_pos",
                 "body_mass", "geom_friction", "jnt_range", "dof_damping", "wrap_prm", "hfield_data")


class DMCEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, domain: str, task: str, seed: int | None = None):
        self.task_name = f"{domain}-{task}"
        self._env = suite.load(domain, task, task_kwargs={"random": np.random.RandomState(seed)})
        self._physics = self._env.physics
        self._keys = list(self._env.observation_spec().keys())
        obs_dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
        spec = self._env.action_spec()
        self._lo = spec.minimum.astype(np.float64)
        self._hi = spec.maximum.astype(np.float64)
        self._identity_action = bool(np.all(self._lo == -1.0) and np.all(self._hi == 1.0))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)
        self.max_episode_steps = int(round(self._env._step_limit)) if np.isfinite(self._env._step_limit) else None
        self._obs_buf = np.empty(obs_dim, np.float32)

    def _flat(self, obs) -> np.ndarray:
        out = self._obs_buf
        i = 0
        for k in self._keys:
            v = np.asarray(obs[k]).ravel()
            out[i:i + v.size] = v
            i += v.size
        return out.copy()

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        ts = self._env.reset()
        return self._flat(ts.observation), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        if not self._identity_action:
            a = self._lo + (a + 1.0) * 0.5 * (self._hi - self._lo)
        try:
            ts = self._env.step(a)
        except control.PhysicsError as e:
            self._env._reset_next_step = True
            return self._flat(self._env.task.get_observation(self._physics)), 0.0, True, False, \
                {"physics_error": str(e)}
        reward = float(ts.reward or 0.0)
        terminated = truncated = False
        if ts.last():
            if ts.discount == 0.0:
                terminated = True
            else:
                truncated = True
        return self._flat(ts.observation), reward, terminated, truncated, {}

    def render_frame(self, width: int = 320, height: int = 240, camera_id: int = 0) -> np.ndarray:
        """(height, width, 3) uint8 image of the current state, rendered by MuJoCo offscreen
        (needs MUJOCO_GL=egl or osmesa set before dm_control is imported; see `gorl-bench evaluate`)."""
        return self._physics.render(height=height, width=width, camera_id=camera_id)

    @property
    def control_timestep(self) -> float:
        """Seconds of simulated time per env step."""
        return float(self._env.control_timestep())

    def free_rendering(self) -> None:
        """Release the offscreen GL context now (at interpreter exit dm_control's executor is gone)."""
        self._physics.free()

    def remove_time_limit(self) -> None:
        """Never truncate (GoRL's reference decoder-data collector, spec 6.3)."""
        self._env._step_limit = float("inf")
        self.max_episode_steps = None

    # -- exact save/restore for resume ------------------------------------------------
    def get_state(self) -> dict:
        state = mjstate.get_state(self._physics.model.ptr, self._physics.data.ptr)
        model = {f: np.array(getattr(self._physics.model, f)) for f in _MODEL_FIELDS
                 if hasattr(self._physics.model, f)}
        return {"mj_state": state, "model": model, "task": plaindata.object_state(self._env.task, "task"),
                "step_count": self._env._step_count, "reset_next_step": self._env._reset_next_step}

    def set_state(self, st: dict) -> None:
        for f, v in st["model"].items():
            getattr(self._physics.model, f)[...] = v
        if "hfield_data" in st["model"] and self._physics._contexts:  # as quadruped-escape does
            with self._physics.contexts.gl.make_current() as ctx:
                for i in range(self._physics.model.nhfield):
                    ctx.call(mujoco.mjr_uploadHField, self._physics.model.ptr,
                             self._physics.contexts.mujoco.ptr, i)
        mjstate.set_state(self._physics.model.ptr, self._physics.data.ptr, st["mj_state"])
        self._physics.forward()
        if isinstance(st["task"], bytes):  # a checkpoint of an older version (train --trust-checkpoint)
            import pickle
            self._env._task = pickle.loads(st["task"])
        else:
            plaindata.restore_object(self._env.task, st["task"], "task")
        self._env._step_count = st["step_count"]
        self._env._reset_next_step = st["reset_next_step"]
