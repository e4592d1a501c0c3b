"""The baselines' settings and registry entries: importable without torch.

Each config class holds every hyperparameter of its algorithm (defaults: the ``paper`` preset
of baselines/presets/<name>.yaml); each :class:`~gorl.registry.Algorithm` names its
algorithm's ``train`` and ``make_agent`` lazily (:class:`~gorl.registry.Lazy`), so reading the
registry, which the pipeline's Snakefile and ``gorl-bench plan`` do, loads no torch. The
algorithms themselves: baselines/ppo.py, fpo.py, dppo.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gorl.config import defaults_from
from gorl.core.onpolicy_config import EVAL_MODES, OnPolicyConfig
from gorl.errors import ConfigError
from gorl.registry import Algorithm, Lazy

PRESETS_DIR = Path(__file__).with_name("presets")
PRESETS = PRESETS_DIR / "ppo.yaml"
FPO_PRESETS = PRESETS_DIR / "fpo.yaml"
DPPO_PRESETS = PRESETS_DIR / "dppo.yaml"


@dataclass
@defaults_from(PRESETS)
class PPOConfig(OnPolicyConfig):
    actor_hidden: list[int]
    """Actor hidden layers; the actor outputs mean and pre-scale (2 x d_a)."""
    clip_eps: float
    """PPO clipping epsilon."""
    entropy_coef: float
    """Entropy bonus coefficient."""
    entropy_tanh_correction: bool
    """Add the log(1 - tanh^2) term: entropy of the squashed action (reference)."""
    scale_cap: float | None
    """Upper clip of the policy scale (GoRL's copy clips at 10; FPO's copy does not)."""


TEACHER_PRESETS = PRESETS.with_name("ppo_teacher.yaml")


@dataclass
@defaults_from(TEACHER_PRESETS)
class PPOTeacherConfig(PPOConfig):
    """PPO with the teacher's budget and evaluations (gorl/algorithm/teacher.py); its presets
    extend PPO's (``base: ppo:PRESET``)."""


@dataclass
@defaults_from(FPO_PRESETS)
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


@dataclass
@defaults_from(DPPO_PRESETS)
class DPPOConfig(OnPolicyConfig):
    actor_hidden: list[int]
    """Hidden layers of the velocity network v(obs_norm, x_t, emb(t))."""
    output_scale: float
    """The velocity network's output is multiplied by this."""
    flow_steps: int
    """Denoising (Euler) steps; each is one transition of the denoising MDP."""
    noise_std: float
    """Std of the Gaussian noise added at every Euler step (sde_sigma; not scaled by dt)."""
    clip_eps: float
    """PPO clipping epsilon, applied to each per-step ratio."""
    eval_mode: str
    """'stochastic' (reference: random x_1 and per-step noise at evaluation) or 'zero_noise'."""

    def validate(self) -> None:
        super().validate()
        if self.eval_mode not in EVAL_MODES:
            raise ConfigError(f"eval_mode must be one of {EVAL_MODES}, got {self.eval_mode!r}")
        for key in ("flow_steps", "noise_std", "clip_eps", "output_scale"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")


PPO = Algorithm(name="ppo", config_cls=PPOConfig, presets_file=PRESETS, train=Lazy("baselines.ppo:train"),
                make_agent=Lazy("baselines.ppo:make_agent"), label="Gaussian PPO", color="#949494",
                family="baseline", description="Gaussian PPO, Brax/Playground configuration (spec 3)")

PPO_TEACHER = Algorithm(name="ppo_teacher", config_cls=PPOTeacherConfig, presets_file=TEACHER_PRESETS,
                        train=Lazy("baselines.ppo:train"), make_agent=Lazy("baselines.ppo:make_agent"),
                        label="PPO teacher", color="#56b4e9", family="teacher",
                        description="PPO as GoRL's teacher (humanoid profile, spec 14); GoRL runs read it "
                                    "(teacher_run)")

FPO = Algorithm(name="fpo", config_cls=FPOConfig, presets_file=FPO_PRESETS, train=Lazy("baselines.fpo:train"),
                make_agent=Lazy("baselines.fpo:make_agent"), label="FPO", color="#de8f05", family="baseline",
                description="Flow Policy Optimization, CFM-loss ratio (spec 4)")

DPPO = Algorithm(name="dppo", config_cls=DPPOConfig, presets_file=DPPO_PRESETS, train=Lazy("baselines.dppo:train"),
                 make_agent=Lazy("baselines.dppo:make_agent"), label="DPPO", color="#029e73", family="baseline",
                 description="DPPO as in the GoRL code: per-denoising-step PPO ratio (spec 5)")
