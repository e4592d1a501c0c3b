"""A trained policy back from its run directory: ``gorl.load_policy(run_dir, which)``.

    from gorl import load_policy
    policy = load_policy("runs/ppo/cartpole-balance/seed1")          # which="final"
    action = policy(obs)                                             # deterministic, in [-1, 1]
    action = policy(obs, deterministic=False)                        # sampled

Every algorithm's trainer saves ``policy_final.pt`` (the end of training) and
``policy_best.pt`` (the best evaluation so far, ties to the later one) through
:meth:`gorl.core.run.Run.save_policy`: the agent's and the observation normaliser's state
dicts, GoRL's decoder of the same stage, the stage, env step and evaluation return. The
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
                 decoder: torch.nn.Module | None = None) -> dict:
    """What a policy file holds (tensors on the CPU, numbers, strings), made while training.
    ``decoder``: GoRL's decoder of the stage (the encoder's actions pass through it)."""
    def cpu(sd: dict) -> dict:
        return {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in sd.items()}

    out = {"agent": cpu(agent.state_dict()), "normalizer": cpu(normalizer.state_dict()),
           "stage": int(stage), "env_step": int(env_step)}
    if decoder is not None:
        out["decoder"] = decoder_state(decoder)
    return out


def decoder_state(decoder) -> dict:
    """A GoRL decoder as plain data (the format of stages/stage<k>/decoder.pt)."""
    return {"kind": decoder.kind, "identity": bool(decoder.identity_init),
            "state": {k: v.detach().cpu().clone() for k, v in decoder.state_dict().items()}}


class Policy:
    """Observations -> actions in [-1, 1] (the env's action space; dm_control's own bounds
    are applied by the env). ``obs``: (d_o,) or (B, d_o), numpy or torch; returns the same
    kind. Deterministic: the algorithm's evaluation action (what evals.csv scored);
    sampled: its rollout action."""

    def __init__(self, agent, normalizer, *, algorithm: str, task: str, seed: int, which: str, stage: int,
                 env_step: int, eval_return: float | None, config: dict, device: torch.device,
                 decoder=None):
        self.agent, self.normalizer, self.decoder = agent, normalizer, decoder
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
    dec = Decoder(st["kind"], obs_dim, act_dim, cfg.decoder_hidden, cfg.decoder_steps, identity=st["identity"])
    dec.load_state_dict(st["state"])
    return dec.to(device).eval()


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
    if stage is not None:
        sd = rundir.stage_path(run_dir, stage)
        st = rundir.load_tensors(sd / rundir.STAGE_ENCODER_BEST)
        st = {**st, "decoder": rundir.load_tensors(sd / rundir.STAGE_DECODER), "eval_return": st["return"]}
    else:
        path = run_dir / rundir.POLICIES[which]
        if not path.exists():
            hint = " (the run has not finished: try which='best')" if which == "final" else ""
            raise RunDirError(f"{path} does not exist{hint}")
        st = rundir.load_tensors(path)
    from gorl.core.normalizer import RunningNormalizer
    from gorl.envs import env_dims
    obs_dim, act_dim = env_dims(meta["task"])
    decoder = None
    if "decoder" in st:  # GoRL: a latent Gaussian encoder whose actions pass through the decoder
        from gorl.algorithm.gorl import make_encoder
        decoder = _decoder(st["decoder"], cfg, meta["task"], device)
        agent = make_encoder(cfg, int(st.get("stage", 0)), obs_dim, act_dim, decoder)
    else:
        if algo.make_agent is None:
            raise RunDirError(f"algorithm {algo.name!r} registers no make_agent, so its policy cannot be "
                              f"rebuilt (gorl.registry.Algorithm.make_agent)")
        agent = algo.make_agent(cfg, obs_dim, act_dim)
    agent.load_state_dict(st["agent"])
    agent.to(device).eval()
    normalizer = RunningNormalizer(obs_dim, cfg.obs_norm_mode)
    normalizer.load_state_dict(st["normalizer"])
    normalizer.to(device)
    ret = st.get("eval_return")
    return Policy(agent, normalizer, algorithm=algo.name, task=meta["task"], seed=int(meta["seed"]),
                  which=which if stage is None else f"stage {stage} best", stage=int(st.get("stage", 0)),
                  env_step=int(st.get("env_step", 0)), eval_return=None if ret is None else float(ret),
                  config=meta, device=device, decoder=decoder)
