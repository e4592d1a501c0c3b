"""FPO: flow policy trained by PPO with a CFM-loss likelihood-ratio proxy (spec 4).

Acting: x_1 ~ N(0, I), 10 Euler steps of the velocity net (32x4, output x0.25); the env
receives tanh(x_0). Stored per transition: the pre-action a, 8 pairs (eps_i, t_i) with
t_i on the 10-point grid {1.0, ..., 0.1}, and the per-sample CFM losses l_old_i under the
rollout-time parameters and statistics (both drawn/computed for the whole rollout at its
end, before any statistics update: one batched call instead of one per env step). Loss: rho_i = exp(clip(l_old_i - l_new_i,
-3, 3)) (GoRL v1, per sample) or exp(mean l_old - mean l_new) (upstream FPO,
``average_losses_before_exp``), PPO clip 0.05, no entropy term.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gorl.config import defaults_from
from gorl.core.gaussian_policy import clip_fraction, clipped_surrogate
from gorl.core.onpolicy import OnPolicyConfig, OnPolicyTrainer
from gorl.core.run import Run
from gorl.errors import ConfigError
from gorl.generative import EVAL_MODES, FlowPolicy, cfm_loss, grid_time
from gorl.registry import Algorithm

PRESETS = Path(__file__).with_name("presets") / "fpo.yaml"


@dataclass
@defaults_from(PRESETS)
class FPOConfig(OnPolicyConfig):
    actor_hidden: list[int]
    """Hidden layers of the velocity network v(obs_norm, x_t, emb(t))."""
    output_scale: float
    """The velocity network's output is multiplied by this (policy_mlp_output_scale)."""
    flow_steps: int
    """Euler steps from t = 1 (noise) to t = 0 (action)."""
    num_mc_samples: int
    """(eps, t) pairs drawn and stored per action for the CFM-loss ratio."""
    discretize_t: bool
    """Draw the training t from the Euler grid {1.0, ..., 1/flow_steps} (reference); else U(0, 1)."""
    clip_eps: float
    """PPO clipping epsilon."""
    average_losses_before_exp: bool
    """False (GoRL v1): one ratio per (eps, t) sample, exp(clip(l_old - l_new, -ratio_log_clip, ratio_log_clip));
    True (upstream FPO): one ratio per action, exp(mean l_old - mean l_new), no clip."""
    ratio_log_clip: float | None
    """Clip of l_old - l_new before the exp in the per-sample mode (null when averaged, which has no clip)."""
    eval_mode: str
    """'stochastic' (reference: random x_1 at evaluation, spec 1.4) or 'zero_noise' (x_1 = 0)."""

    def validate(self) -> None:
        super().validate()
        if self.eval_mode not in EVAL_MODES:
            raise ConfigError(f"eval_mode must be one of {EVAL_MODES}, got {self.eval_mode!r}")
        if self.average_losses_before_exp and self.ratio_log_clip is not None:
            raise ConfigError(f"ratio_log_clip={self.ratio_log_clip} would not be used (average_losses_before_exp "
                              "true has no clip); set it to null")
        if not self.average_losses_before_exp and self.ratio_log_clip is None:
            raise ConfigError("ratio_log_clip must be set when average_losses_before_exp is false")
        for key in ("flow_steps", "num_mc_samples", "clip_eps", "ratio_log_clip", "output_scale"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")


class FPOAgent(FlowPolicy):
    jax_rule = "flow"
    """How gorl/core/jax_rollout.py translates this agent's act (the scan rollout on playground: tasks)."""

    def __init__(self, cfg: FPOConfig, obs_dim: int, act_dim: int):
        super().__init__(obs_dim, act_dim, cfg.actor_hidden, output_scale=cfg.output_scale,
                         flow_steps=cfg.flow_steps, noise_std=0.0, eval_mode=cfg.eval_mode)
        self.num_mc_samples, self.discretize_t = cfg.num_mc_samples, cfg.discretize_t
        self.clip_eps, self.ratio_log_clip = cfg.clip_eps, cfg.ratio_log_clip
        self.average_losses_before_exp = cfg.average_losses_before_exp

    def draw_eps_t(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N (eps, t) pairs per action of ``a`` (..., d_a): eps (..., N, d_a), t (..., N)."""
        lead = (*a.shape[:-1], self.num_mc_samples)
        eps = torch.randn(*lead, self.act_dim, device=a.device)
        if self.discretize_t:
            t = grid_time(self.flow_steps, a.device)[torch.randint(self.flow_steps, lead, device=a.device)]
        else:
            t = torch.rand(*lead, device=a.device)
        return eps, t

    def act(self, obs_norm, obs_raw):
        a = self.sample(obs_norm, self._noise(obs_norm, obs_norm.shape[0]))
        return a, {"a": a}

    def finish_rollout(self, obs_norm, stored):
        """The (eps, t) pairs of every transition and their l_old under the rollout-time
        parameters and statistics, for the whole rollout in one call (the parameters do not
        change during a rollout); stored and reused by every epoch of the update."""
        a = stored["a"]
        eps, t = self.draw_eps_t(a)
        # chunks of ~4k (action, sample) rows along the step axis: bounded memory at any
        # rollout size, and cache-sized tensors (measured fastest on CPU: 2x vs one call)
        n = max(1, 4096 // max(1, t[0].numel()))
        l_old = torch.cat([cfm_loss(self.net, *chunk, "fpo") for chunk in
                           zip(obs_norm.split(n), a.split(n), eps.split(n), t.split(n))])
        return {"eps": eps, "t": t, "l_old": l_old}

    def ratio(self, obs_norm, stored) -> tuple[torch.Tensor, torch.Tensor]:
        """(ratio, l_new): ratio (T, B, N) per sample or (T, B) averaged."""
        l_new = cfm_loss(self.net, obs_norm, stored["a"], stored["eps"], stored["t"], "fpo")
        if self.average_losses_before_exp:
            return torch.exp(stored["l_old"].mean(-1) - l_new.mean(-1)), l_new
        c = self.ratio_log_clip
        return torch.exp((stored["l_old"] - l_new).clamp(-c, c)), l_new

    def policy_loss(self, obs_norm, stored, advantages):
        ratio, l_new = self.ratio(obs_norm, stored)
        surrogate = clipped_surrogate(ratio, advantages, self.clip_eps)
        # l_new is logged (and so checked for finiteness by the trainer): the [-3, 3] clip
        # keeps the ratio finite even when the CFM loss itself has blown up.
        return surrogate, {"surrogate": surrogate, "cfm_loss": l_new.mean(),
                           "ratio_mean": ratio.mean().detach(),
                           "clip_frac": clip_fraction(ratio, self.clip_eps)}


def make_agent(cfg: FPOConfig, obs_dim: int, act_dim: int) -> FPOAgent:
    return FPOAgent(cfg, obs_dim, act_dim)


def train(cfg: FPOConfig, run: Run) -> OnPolicyTrainer:
    from gorl.core.loop import run_single_trainer
    return run_single_trainer(cfg, run, make_agent)


ALGORITHM = Algorithm(name="fpo", config_cls=FPOConfig, presets_file=PRESETS, train=train, label="FPO",
                      color="#de8f05", family="baseline",
                      description="Flow Policy Optimization, CFM-loss ratio (spec 4)", make_agent=make_agent)
