"""A trained policy back from its run directory: ``gorl.load_policy(run_dir, which)``.

    from gorl import load_policy
    policy = load_policy("runs/ppo/cartpole-balance/seed1")          # which="final"
    action = policy(obs)                                             # deterministic, in [-1, 1]
    action = policy(obs, deterministic=False)                        # sampled

Every algorithm's trainer saves ``policy_final.pt`` (the end of training) and
``policy_best.pt`` (the best evaluation so far, ties to the later one) through
:meth:`gorl.core.run.Run.save_policy`: the agent's and the observation normaliser's state
dicts, the shared trainer's critic, GoRL's decoder of the same stage, the stage, env step and evaluation return. The
files hold tensors and plain data only and are read with ``torch.load(weights_only=True)``
(:func:`gorl.rundir.load_tensors`), so loading a directory someone sent you runs none of
its code. The agent is rebuilt from ``config.yaml`` by the algorithm's registered
``make_agent`` (:class:`gorl.registry.Algorithm`); GoRL's by its encoder and decoder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gorl import rundir
from gorl.errors import RunDirError


def policy_state(agent: torch.nn.Module, normalizer, *, stage: int = 0, env_step: int = 0,
                 decoder: torch.nn.Module | None = None, critic: torch.nn.Module | None = None) -> dict:
    """What a policy file holds (tensors on the CPU, numbers, strings), made while training.
    ``decoder``: GoRL's decoder of the stage (the encoder's actions pass through it).
    ``critic``: the shared trainer's value function of the same moment (a GoRL run warm-started
    from a teacher run reads it from there, :func:`gorl.algorithm.teacher.load_teacher`)."""
    def cpu(sd: dict) -> dict:
        return {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in sd.items()}

    out = {"agent": cpu(agent.state_dict()), "normalizer": cpu(normalizer.state_dict()),
           "stage": int(stage), "env_step": int(env_step)}
    if critic is not None:
        out["critic"] = cpu(critic.state_dict())
    if decoder is not None:
        out["decoder"] = decoder_state(decoder)
    return out


def decoder_state(decoder) -> dict:
    """A GoRL decoder as plain data (the format of stages/stage<k>/decoder.pt)."""
    return decoder.to_plain()


class Policy:
    """Observations -> actions in [-1, 1] (the env's action space; dm_control's own bounds
    are applied by the env). ``obs``: (d_o,) or (B, d_o), numpy or torch; returns the same
    kind. ``deterministic`` True: the algorithm's evaluation action, the one evals.csv scored
    (the mean for PPO and GoRL; FPO and DPPO's reference evaluation draws a fresh flow sample,
    ``eval_mode: stochastic``, unless the run set ``eval_mode: zero_noise``); False: its
    rollout (exploration) action. Randomness comes from torch's global generator."""

    def __init__(self, agent, normalizer, *, algorithm: str, task: str, seed: int, which: str, stage: int,
                 env_step: int, eval_return: float | None, config: dict, device: torch.device,
                 decoder=None, critic_state: dict | None = None, sha256: str | None = None):
        self.agent, self.normalizer, self.decoder = agent, normalizer, decoder
        self.sha256 = sha256
        """The SHA-256 of the policy file it was read from (``policy_final.pt``, ``policy_best.pt``;
        None for a stage's policy, read from two files): what a GoRL run records of its teacher."""
        self.critic_state = critic_state
        """The shared trainer's value function (state dict, CPU tensors) saved with the policy, or None."""
        self.algorithm, self.task, self.seed, self.which = algorithm, task, seed, which
        self.stage, self.env_step, self.eval_return = stage, env_step, eval_return
        self.config, self.device = config, device

    @torch.no_grad()
    def pre_action(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """(B, d_o) raw observations (torch, on ``device``) -> (B, d_a) pre-tanh actions."""
        obs = obs.to(self.device, torch.float32)
        if deterministic:
            return self.agent.act_eval(self.normalizer(obs), obs)
        return self.agent.act(self.normalizer(obs), obs)[0]

    def __call__(self, obs: Any, deterministic: bool = True):
        is_np = not torch.is_tensor(obs)
        x = torch.as_tensor(np.asarray(obs, np.float32) if is_np else obs)
        single = x.dim() == 1
        a = torch.tanh(self.pre_action(x.reshape(1, -1) if single else x, deterministic))
        a = a[0] if single else a
        return a.cpu().numpy() if is_np else a

    def __repr__(self) -> str:
        ret = "" if self.eval_return is None else f", eval return {self.eval_return:.1f}"
        return (f"Policy({self.algorithm} on {self.task}, seed {self.seed}, {self.which}: stage {self.stage}, "
                f"env step {self.env_step}{ret}, {self.device})")


def _config(run_dir: Path) -> tuple[dict, Any, Any]:
    from gorl import registry
    from gorl.config import make_config
    meta = rundir.read_config(run_dir)
    if meta is None:
        raise RunDirError(f"{run_dir} has no readable {rundir.CONFIG}: not a run directory")
    for mod in meta.get("imports") or ():  # the plug-ins the run was trained with (registered names)
        import importlib
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise RunDirError(f"{run_dir}: the run imported {mod!r}, which is not importable here: {e}") from None
    try:
        algo = registry.get(meta["algorithm"])
    except KeyError as e:
        raise RunDirError(f"{run_dir}: {e.args[0]}") from None
    return meta, algo, make_config(algo.config_cls, meta["hyperparameters"])


def load_decoder(run_dir: Path | str, stage: int, device: str | torch.device = "cpu"):
    """GoRL's decoder_k from stages/stage<k>/decoder.pt (tensors and plain data only)."""
    run_dir = Path(run_dir)
    meta, _, cfg = _config(run_dir)
    st = rundir.load_tensors(rundir.stage_path(run_dir, stage) / rundir.STAGE_DECODER)
    return _decoder(st, cfg, meta["task"], device)


def _decoder(st: dict, cfg, task: str, device):
    from gorl.algorithm.decoder import Decoder
    from gorl.envs import env_dims
    obs_dim, act_dim = env_dims(task)
    return Decoder.from_plain(st, obs_dim, act_dim, cfg).to(device).eval()


def load_policy(run_dir: Path | str, which: str = "final", *, stage: int | None = None,
                device: str | torch.device = "cpu") -> Policy:
    """The policy of a run directory, on ``device`` ('cpu', 'cuda', ...).

    ``which``: 'final' (the end of training: ``policy_final.pt``) or 'best' (the best
    evaluation: ``policy_best.pt``). GoRL only, ``stage=k``: stage k's best encoder with
    decoder_k (``stages/stage<k>/``, what the decoder of stage k + 1 was fitted to).
    Raises :class:`gorl.errors.RunDirError` (one line) if a file is missing or holds more
    than tensors and plain data.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    if which not in rundir.POLICIES:
        raise ValueError(f"which must be one of {tuple(rundir.POLICIES)}, got {which!r}")
    meta, algo, cfg = _config(run_dir)
    digest = None
    if stage is not None:
        sd = rundir.stage_path(run_dir, stage)
        st = rundir.load_tensors(sd / rundir.STAGE_ENCODER_BEST)
        st = {**st, "decoder": rundir.load_tensors(sd / rundir.STAGE_DECODER), "eval_return": st["return"]}
    else:
        path = run_dir / rundir.POLICIES[which]
        if not path.exists():
            hint = " (the run has not finished: try which='best')" if which == "final" else ""
            raise RunDirError(f"{path} does not exist{hint}")
        st, digest = rundir.load_tensors(path, sha256=True)
    from gorl.core.normalizer import RunningNormalizer
    from gorl.envs import env_dims
    obs_dim, act_dim = env_dims(meta["task"])
    if algo.make_agent is None:
        raise RunDirError(f"algorithm {algo.name!r} registers no make_agent, so its policy cannot be "
                          f"rebuilt (gorl.registry.Algorithm.make_agent)")
    decoder, extra = None, {}
    if "decoder" in st:  # GoRL: a latent Gaussian encoder whose actions pass through the decoder
        decoder = _decoder(st["decoder"], cfg, meta["task"], device)
        extra = {"stage": int(st.get("stage", 0)), "decoder": decoder}
    agent = algo.make_agent(cfg, obs_dim, act_dim, **extra)
    agent.load_state_dict(st["agent"])
    agent.to(device).eval()
    normalizer = RunningNormalizer(obs_dim, cfg.obs_norm_mode)
    normalizer.load_state_dict(st["normalizer"])
    normalizer.to(device)
    ret = st.get("eval_return")
    return Policy(agent, normalizer, algorithm=algo.name, task=meta["task"], seed=int(meta["seed"]),
                  which=which if stage is None else f"stage {stage} best", stage=int(st.get("stage", 0)),
                  env_step=int(st.get("env_step", 0)), eval_return=None if ret is None else float(ret),
                  config=meta, device=device, decoder=decoder, critic_state=st.get("critic"), sha256=digest)


# -- running a policy: `gorl-bench evaluate` ----------------------------------------------------
EVALUATE_STREAM = 5_000_000
"""Env seeds of ``evaluate`` (+ its --seed): a stream that no training or evaluation uses."""


@torch.no_grad()
def evaluate_policy(policy: Policy, episodes: int, *, seeds: list[int] | None = None, seed: int = 0,
                    deterministic: bool = True) -> np.ndarray:
    """Returns of ``episodes`` full episodes of the policy's task, one env per episode, reset
    with ``seeds`` (default: fresh seeds of :data:`EVALUATE_STREAM` + ``seed``). With the
    seeds of one of the run's evaluations and ``deterministic`` this repeats that evaluation."""
    from gorl.core.run import env_seeds
    from gorl.envs import make_envs
    if seeds is None:
        seeds = env_seeds(policy.seed, EVALUATE_STREAM + seed, episodes)
    envs = make_envs(policy.task, seeds, policy.device, 0, policy.config.get("imports") or ())
    obs = envs.reset(seeds)
    returns = torch.zeros(envs.num_envs, dtype=torch.float64, device=policy.device)
    active = torch.ones(envs.num_envs, dtype=torch.bool, device=policy.device)
    while active.any():
        obs, reward, term, trunc, _ = envs.step(torch.tanh(policy.pre_action(obs, deterministic)))
        returns += reward * active
        active &= ~(term | trunc)
    envs.close()
    return returns.cpu().numpy()


VIDEO_FORMATS = (".gif", ".mp4")


def check_video_path(path: Path) -> None:
    """A writable video path of a known format (.gif always; .mp4 with imageio-ffmpeg)."""
    from gorl.errors import BadInput
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise BadInput(f"--video {path}: the name must end in {' or '.join(VIDEO_FORMATS)}")
    if path.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise BadInput(f"--video {path}: an .mp4 needs imageio-ffmpeg (pip install 'gorl-bench[video]'); "
                           f"a .gif needs nothing extra") from None
    if not path.parent.is_dir():
        raise BadInput(f"--video {path}: the folder {path.parent} does not exist")


@torch.no_grad()
def record_video(policy: Policy, path: Path, *, seed: int = 0, deterministic: bool = True, width: int = 320,
                 height: int = 240, camera_id: int = 0, max_fps: float = 30.0) -> dict:
    """One episode of a dm_control suite or ``playground:`` task, rendered by MuJoCo offscreen, to
    ``path`` (.gif or .mp4); the episode starts from the first seed ``evaluate_policy`` uses with
    this ``seed``. Returns {"frames", "fps", "return"}. MUJOCO_GL must be egl or osmesa before
    MuJoCo loads."""
    from gorl.core.run import env_seeds
    from gorl.envs import make_env, make_envs
    from gorl.envs.registry import PLAYGROUND_PREFIX
    from gorl.errors import BadInput
    refused = f"--video: rendering is for dm_control suite and playground: tasks; {policy.task} is not one"
    playground = policy.task.startswith(PLAYGROUND_PREFIX)
    if ":" in policy.task and not playground:  # gym:<id>: refused before any env is built
        raise BadInput(refused)
    s = env_seeds(policy.seed, EVALUATE_STREAM + seed, 1)[0]
    if playground:  # a batch of one env, its first state that of evaluate_policy's first episode
        env = make_envs(policy.task, [s], policy.device)
        obs = env.obs
    else:
        env = make_env(policy.task, None)
        if not hasattr(env, "render_frame"):
            raise BadInput(refused)
        obs, _ = env.reset(seed=s)
    stride = max(1, int(np.ceil(1.0 / env.control_timestep / max_fps)))
    fps = 1.0 / (env.control_timestep * stride)
    frames, total, t = [env.render_frame(width, height, camera_id)], 0.0, 0
    while True:
        obs, reward, term, trunc, _ = env.step(policy(obs, deterministic))
        total += float(reward)
        t += 1
        if bool(term) or bool(trunc):  # (a playground env has reset itself by now: no frame of that)
            break
        if t % stride == 0:
            frames.append(env.render_frame(width, height, camera_id))
    env.free_rendering()
    write_video(Path(path), frames, fps)
    return {"frames": len(frames), "fps": fps, "return": total}


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Frames (H, W, 3) uint8 -> a .gif (Pillow) or an .mp4 (imageio-ffmpeg, H.264)."""
    if path.suffix.lower() == ".gif":
        from PIL import Image
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0)
        return
    import imageio_ffmpeg
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=2, quality=7)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
