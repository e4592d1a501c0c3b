"""MuJoCo Playground's DM Control Suite ports on MJX (the paper's physics), as one batched
on-device JAX state that speaks torch.

TASK ``playground:<Name>`` (``playground:CheetahRun``, ``playground:CartpoleBalance``, ...)
loads ``mujoco_playground.registry.load(Name, config_overrides={'impl': 'jax'})``: MJX's
JAX implementation, which Playground's own Brax trainer uses and the paper ran (Playground
0.2.0 defaults these tasks to MuJoCo Warp). No brax: the episode bookkeeping Brax's
wrappers add is done here, the way the dm_control path does it:

- all ``num_envs`` envs are one pytree with a leading batch axis; ``reset`` and ``step`` are
  ``jit(vmap(...))`` of Playground's own functions;
- an episode ends at ``episode_length`` (1000) steps as a *truncation*; Playground's own
  ``done`` (NaN in the simulation state) is a *termination*, counted in ``physics_errors``,
  with reward 0 and a zeroed final observation (as the dm_control path does on a
  ``PhysicsError``);
- ended envs are reset on the device from their own per-env key, inside the same jitted
  step (a batch-level ``lax.cond``, so steps without any ended episode pay nothing);
  ``step`` returns the observation to act on next and ``final_obs``, the true next
  observation before any reset (for bootstrapping at a truncation).

Tensors cross between JAX and torch through DLPack on the same device (JAX's device is
chosen to match torch's, ``cuda:k`` included): no host round trip per step on a GPU. On a
machine without one, JAX's CPU backend runs the same code.
"""
from __future__ import annotations

import functools
import hashlib
import os
import sys
import weakref
from typing import Any, Callable, Sequence

import numpy as np
import torch

from gorl.envs.names import PLAYGROUND_PREFIX as PREFIX

# Tasks without contacts: MJX steps them fast on a CPU (CartpoleBalance 150-310k env steps/s at
# 256 envs here). Contact tasks (the six paper tasks: 30 (HopperStand) to 18k env steps/s at
# 32-256 envs on this CPU, up to a minute of compilation each) are for GPUs (docs/benchmarks.md).
CPU_FRIENDLY = ("CartpoleBalance", "CartpoleBalanceSparse", "CartpoleSwingup", "CartpoleSwingupSparse",
                "PendulumSwingup", "AcrobotSwingup", "AcrobotSwingupSparse")
INSTALL_HINT = "playground: tasks need the JAX stack: pip install -e '.[playground]'"


class PlaygroundUnavailable(ImportError):
    pass


CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "gorl-bench", "jax")


def _import():
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch
    # XLA compiles a task's batched step in 10-45 s per process; the persistent cache makes
    # every later process (resumes, the pipeline's other seeds, tests) load it instead.
    try:
        import jax
        from mujoco_playground import registry
    except ImportError as e:
        raise PlaygroundUnavailable(f"{INSTALL_HINT} ({e})") from None
    if not jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, when set, wins
        jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
    return jax, registry


def task_names() -> tuple[str, ...]:
    """Every DM Control Suite task Playground ports (needs the optional JAX stack)."""
    _, registry = _import()
    return tuple(registry.dm_control_suite.ALL_ENVS)


def dims(task: str) -> tuple[int, int]:
    return _sizes(task[len(PREFIX):])


@functools.lru_cache(maxsize=None)
def _sizes(name: str) -> tuple[int, int]:
    """(observation size, action size), once per task and process: Playground's
    ``observation_size`` traces the env's whole reset (MJX's forward) with ``jax.eval_shape``
    each time it is read (1-3 s for CartpoleBalance on a CPU), and every env set needs it."""
    env = _compiled(name)[0]
    return int(env.observation_size), int(env.action_size)


@functools.lru_cache(maxsize=None)
def _compiled(name: str):
    """One Playground env and its jitted batched functions per task and process, so that
    every env set of a run (train, eval, GoRL's collectors) shares the compiled code
    (jit caches per batch shape)."""
    jax, registry = _import()
    import jax.numpy as jnp

    env = registry.load(name, config_overrides={"impl": "jax"})
    if jax.default_backend() == "cpu" and name not in CPU_FRIENDLY:
        print(f"note: playground:{name} has contacts: on a CPU, MJX compiles it for about a minute per batch "
              f"size and steps it at tens to a few thousand env steps/s (CartpoleBalance: over 100k); contact tasks "
              f"are meant for a GPU (README: Playground tasks)", file=sys.stderr, flush=True)
    episode_length = int(registry.get_default_config(name).episode_length)

    def reset_one(key):
        key, sub = jax.random.split(key)
        return env.reset(sub), key

    def strong(tree):  # reset's weakly typed leaves (e.g. jp.zeros(2) unpacked) as step returns them
        return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), tree)

    def reset(keys):
        states, keys = jax.vmap(reset_one)(keys)
        return strong(states), jnp.zeros(keys.shape[0], jnp.int32), keys, states.obs.astype(jnp.float32)

    def step(state, t, keys, n_nan, action, first=None, *, fixed: bool = False, limit: bool = True):
        nxt = jax.vmap(env.step)(state, action)
        t = t + 1
        finite = jnp.isfinite(nxt.obs).all(-1) & jnp.isfinite(nxt.reward)
        term = (nxt.done > 0) | ~finite
        trunc = ((t >= episode_length) if limit else jnp.zeros_like(term)) & ~term
        done = term | trunc
        reward = jnp.where(term & ~finite, 0.0, nxt.reward).astype(jnp.float32)
        final_obs = jnp.where(finite[:, None], nxt.obs, 0.0).astype(jnp.float32)

        def with_resets(args):
            nxt, keys = args
            if fixed:  # reset_mode fixed_initial: each env's first state (spec 2.3)
                fresh, new_keys = first, keys
            else:
                fresh, new_keys = jax.vmap(reset_one)(keys)
                fresh = strong(fresh)

            def pick(a, b):
                return jnp.where(done.reshape(done.shape + (1,) * (a.ndim - 1)), a, b)
            return jax.tree.map(pick, fresh, nxt), jnp.where(done[:, None], new_keys, keys)

        nxt, keys = jax.lax.cond(done.any(), with_resets, lambda args: args, (nxt, keys))
        t = jnp.where(done, 0, t)
        n_nan = n_nan + (term & ~finite).sum()
        # One array for torch (one DLPack hand-over per step): [obs, final_obs, reward, term, trunc].
        packed = jnp.concatenate([nxt.obs.astype(jnp.float32), final_obs, reward[:, None],
                                  term[:, None].astype(jnp.float32), trunc[:, None].astype(jnp.float32)], -1)
        return nxt, t, keys, packed, n_nan

    # No buffer donation: torch holds DLPack views of the outputs (obs) across steps. One jitted
    # step per (fixed first states, time limit); each compiles only when first used.
    steps = {(fixed, limit): jax.jit(functools.partial(step, fixed=fixed, limit=limit))
             for fixed in (False, True) for limit in (False, True)}
    return env, episode_length, jax.jit(reset), steps


_SCANS: dict = {}
"""scan_rollout's jitted programs, shared by every env set of the process: (task, fixed initial
states, time limit, env action, the act rule's fingerprint) -> the program. A GoRL stage's new
encoder over a decoder of the same structure has a new act function that computes the same thing
(weights are arguments), so it finds the program of the stage before, traced, lowered and
compiled once per run instead of once per stage and env set."""

ENV_ACTIONS = ("tanh", "clip")
"""What the env receives of an act output in :meth:`PlaygroundEnvs.scan_rollout`: 'tanh': its
tanh (a pre-action; every algorithm's default); 'clip': the output clipped to [-1, 1] (GoRL's
bounded actions, ``gorl.algorithm.decoder.bounded_action``)."""

_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""act function -> its fingerprint (computed once per function)."""


def act_fingerprint(jax, act: Callable, params: list, obs_norm, obs_raw, noises: list) -> tuple:
    """What ``act(params, obs_norm, obs_raw, noises)`` computes for arguments of these shapes
    and dtypes: its jaxpr as text (literals at full precision) and the bytes of the constants it
    closes over. Two act functions with equal fingerprints trace to the same program."""
    spec = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)  # noqa: E731
    closed = jax.make_jaxpr(act)([spec(x) for x in params], spec(obs_norm), spec(obs_raw), [spec(n) for n in noises])
    consts = tuple((str(np.asarray(c).dtype), np.shape(c), hashlib.sha256(np.asarray(c).tobytes()).hexdigest())
                   for c in closed.consts)
    return str(closed.jaxpr), consts


def jax_device_for(device: torch.device, devices: Callable[..., list]):
    """JAX's device for torch's ``device`` (``devices`` is ``jax.devices``): the CPU for the
    CPU, CUDA device k for ``cuda:k``, so that tensors cross by DLPack without a copy. Raises
    ValueError, naming the device, when JAX has no such device (a CPU-only jax with a CUDA
    run would otherwise take a host round trip on every step)."""
    device = torch.device(device)
    if device.type == "cpu":
        return devices("cpu")[0]
    if device.type == "cuda":
        try:
            gpus = devices("cuda")
        except RuntimeError:  # no CUDA backend in this jax
            gpus = []
        index = 0 if device.index is None else device.index
        for d in gpus:
            if getattr(d, "local_hardware_id", d.id) == index:
                return d
        raise ValueError(f"device={device}: JAX has no CUDA device {index} (its CUDA devices: "
                         f"{[str(d) for d in gpus] or 'none'}); playground: tasks run JAX on torch's device "
                         f"(install CUDA jax, e.g. pip install 'jax[cuda12]', or set device=cpu)")
    raise ValueError(f"device={device}: playground: tasks run on the CPU or a CUDA device")


class PlaygroundEnvs:
    """``num_envs`` envs of one Playground task stepped as one batch on JAX's device.

    Same interface as :class:`gorl.envs.vector.TorchVecEnv`: torch tensors on ``device`` in
    and out, ``obs``, ``reset(seeds)``, ``step(actions)``, ``get_state``/``set_state``.
    """

    def __init__(self, task: str, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.jax, _ = _import()
        self.task = task
        self.name = task[len(PREFIX):]
        self.env, self.episode_length, self._reset, self._steps = _compiled(self.name)
        self._first = None  # reset_mode fixed_initial: the batched state right after the first reset
        self._limit = True
        self._step = self._steps[False, True]
        self.num_envs = len(seeds)
        self.obs_dim, self.action_dim = _sizes(self.name)
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        # Every input of the jitted step is committed to JAX's device (as the step's own outputs and
        # DLPack actions are): an uncommitted input is another jit signature, i.e. a recompilation.
        # That device is torch's own, so that every hand-over is a zero-copy DLPack view.
        self._jax_device = jax_device_for(self.device, self.jax.devices)
        self._nan = self._put(np.zeros((), np.int32))
        self._renderer = None  # render_frame's MuJoCo renderer, made at the first frame
        self.reset(seeds)

    # -- JAX <-> torch ------------------------------------------------------------------
    def _put(self, x):
        return self.jax.device_put(x, self._jax_device)

    def _torch(self, x) -> torch.Tensor:
        return torch.from_dlpack(x)  # JAX's buffer, on torch's device (jax_device_for)

    def _jax(self, t: torch.Tensor):
        return self.jax.dlpack.from_dlpack(t.detach().to(torch.float32).contiguous())

    # -- the env interface --------------------------------------------------------------
    def reset(self, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """Reset every env: from ``seeds`` (one per env), or else from each env's own key."""
        jnp = self.jax.numpy
        if seeds is None:
            keys = self._keys
        else:
            keys = self._put(self.jax.vmap(self.jax.random.PRNGKey)(jnp.asarray(np.asarray(seeds, np.uint32))))
        self._state, self._t, self._keys, obs = self._reset(keys)
        self._obs = self._torch(obs.astype(jnp.float32))
        return self._obs

    @property
    def obs(self) -> torch.Tensor:
        return self._obs

    def step(self, actions: torch.Tensor):
        self._state, self._t, self._keys, packed, self._nan = self._step(
            self._state, self._t, self._keys, self._nan, self._jax(actions))
        packed, d = self._torch(packed), self.obs_dim
        obs, final_obs = packed[:, :d], packed[:, d:2 * d]
        reward, term, trunc = packed[:, 2 * d], packed[:, 2 * d + 1] > 0.5, packed[:, 2 * d + 2] > 0.5
        self._obs = obs
        return obs, reward, term, trunc, final_obs

    def scan_rollout(self, act, tensors: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor,
                     noises: list[torch.Tensor], env_action: str = "tanh"):
        """S env steps as one JAX program (``lax.scan``; :mod:`gorl.core.jax_rollout`): at each
        step ``act(params, (obs - mean) / std, obs, noise_s) -> (pre_action, stored)``, the env
        receives tanh(pre_action), or with ``env_action`` 'clip' the output clipped to [-1, 1]
        (GoRL's bounded actions). ``tensors`` (the policy's weights), ``mean``/``std`` and
        ``noises`` (each (S, ...)) cross by DLPack once. Returns torch views of the acted-on
        observations (S, N, d), the per-step packed arrays (S, N, 2d + 3: next obs, final obs,
        reward, term, trunc, as :meth:`step` packs them), ``stored`` (S, N, ...) and the
        pre-actions (S, N, d_a); the env
        state continues from the last step, as after S calls of :meth:`step`."""
        jax = self.jax
        fixed = self._first is not None

        def put(t: torch.Tensor):  # a copy: the optimiser updates the weights in place later
            return jax.dlpack.from_dlpack(t.detach().clone())
        params, mean, std = [put(t) for t in tensors], put(mean), put(std)
        noises = [jax.dlpack.from_dlpack(n.contiguous()) for n in noises]
        if act not in _FINGERPRINTS:  # (the shapes and dtypes of one step of the scan below)
            obs = jax.ShapeDtypeStruct(self._state.obs.shape, np.float32)
            obs_norm = jax.eval_shape(lambda o, m, s: (o - m) / s, obs, mean, std)
            _FINGERPRINTS[act] = act_fingerprint(jax, act, params, obs_norm, obs,
                                                 [jax.ShapeDtypeStruct(n.shape[1:], n.dtype) for n in noises])
        if env_action not in ENV_ACTIONS:
            raise ValueError(f"env_action must be one of {ENV_ACTIONS}, got {env_action!r}")
        key = (self.name, fixed, self._limit, env_action, _FINGERPRINTS[act])
        fn = _SCANS.get(key)
        if fn is None:
            step = self._steps[fixed, self._limit]
            jnp = jax.numpy
            squash = jnp.tanh if env_action == "tanh" else (lambda a: jnp.clip(a, -1.0, 1.0))

            def rollout(state, t, keys, n_nan, first, params, mean, std, noises):
                def body(carry, noise):
                    state, t, keys, n_nan = carry
                    obs = state.obs.astype(jnp.float32)
                    pre, stored = act(params, (obs - mean) / std, obs, noise)
                    state, t, keys, packed, n_nan = step(state, t, keys, n_nan, squash(pre), first)
                    return (state, t, keys, n_nan), (obs, packed, stored, pre)
                return jax.lax.scan(body, (state, t, keys, n_nan), noises)
            fn = _SCANS[key] = jax.jit(rollout)
        (self._state, self._t, self._keys, self._nan), (obs, packed, stored, pre) = fn(
            self._state, self._t, self._keys, self._nan, self._first, params, mean, std, noises)
        packed = self._torch(packed)
        self._obs = packed[-1, :, :self.obs_dim]
        return self._torch(obs), packed, {k: self._torch(v) for k, v in stored.items()}, self._torch(pre)

    @property
    def physics_errors(self) -> int:
        return int(self._nan)

    def physics_errors_tensor(self) -> torch.Tensor:
        """``physics_errors`` as a 0-dim tensor on torch's device, with no host read of its own
        (the trainer reads it with the iteration's other metrics)."""
        return self._torch(self._nan)

    def fix_initial_states(self) -> None:
        """Ended envs return to their current (first, seeded) state instead of a fresh reset
        (spec 2.3); re-derived from the seeds when a run resumes."""
        self._first = self._state
        self._step = functools.partial(self._steps[True, self._limit], first=self._first)

    def remove_time_limit(self) -> None:
        """Never truncate (GoRL's reference decoder-data collector, spec 6.3)."""
        self._limit = False
        fixed = self._first is not None
        step = self._steps[fixed, False]
        self._step = functools.partial(step, first=self._first) if fixed else step

    def close(self) -> None:
        self.free_rendering()  # nothing else outside this process; the compiled functions stay cached

    # -- rendering (`gorl-bench evaluate --video`) ------------------------------------------
    @property
    def control_timestep(self) -> float:
        """Seconds of simulated time per env step."""
        return float(self.env.dt)

    def render_frame(self, width: int = 320, height: int = 240, camera_id: int = 0, index: int = 0) -> np.ndarray:
        """(height, width, 3) uint8 image of env ``index``'s current state, rendered by MuJoCo
        offscreen from the task's MuJoCo model, as Playground's own ``render`` does (positions,
        velocities, mocap bodies and applied forces copied into an ``MjData``, then ``mj_forward``).
        Needs MUJOCO_GL=egl or osmesa before MuJoCo is imported; camera ``camera_id`` (the free
        camera where the model has none)."""
        import mujoco
        model = self.env.mj_model
        if self._renderer is None or (self._renderer.width, self._renderer.height) != (width, height):
            self.free_rendering()
            self._renderer, self._render_data = mujoco.Renderer(model, height=height, width=width), mujoco.MjData(model)
        fields = ("qpos", "qvel", "mocap_pos", "mocap_quat", "xfrc_applied")  # env `index`'s only, to the host
        state, dst = self.jax.device_get([getattr(self._state.data, f)[index] for f in fields]), self._render_data
        for field, value in zip(fields, state):
            getattr(dst, field)[:] = value
        mujoco.mj_forward(model, dst)
        self._renderer.update_scene(dst, camera=camera_id if camera_id < model.ncam else -1)
        return self._renderer.render().copy()

    def free_rendering(self) -> None:
        """Release the offscreen GL context (if a frame was rendered)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def get_state(self) -> dict[str, Any]:
        """Host copies of every leaf of the batched state, step counters, keys and counters."""
        leaves = self.jax.tree.leaves((self._state, self._t, self._keys))
        return {"task": self.task, "leaves": [np.asarray(x) for x in self.jax.device_get(leaves)],
                "physics_errors": self.physics_errors}

    def set_state(self, st: dict[str, Any]) -> None:
        treedef = self.jax.tree.structure((self._state, self._t, self._keys))
        if st.get("task") != self.task or len(st["leaves"]) != treedef.num_leaves:
            raise ValueError(f"checkpointed env state is for {st.get('task')!r}, not {self.task!r}")
        jnp = self.jax.numpy
        self._state, self._t, self._keys = self.jax.tree.unflatten(treedef, [self._put(x) for x in st["leaves"]])
        self._obs = self._torch(self._state.obs.astype(jnp.float32))
        self._nan = self._put(np.asarray(st["physics_errors"], np.int32))
