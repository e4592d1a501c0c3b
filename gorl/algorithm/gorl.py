"""GoRL: a latent Gaussian encoder trained by PPO, a generative decoder refitted per stage (spec 6).

    pi(a | s) = integral g(a | s, z) pi_theta(z | s) dz

Stage k (k = 0 .. n_stages - 1), on one global env-step axis:

1. encoder: a fresh Gaussian policy over z (dim = action dim), trained by latent PPO
   against the frozen decoder_k; the env receives tanh(g(s, z)), the ratio is over z
   only, plus the latent regulariser toward N(0, I). Stage k's settings are
   ``cfg.for_stage(k)`` (any encoder key may differ per stage).
2. collect: the stage's best encoder (by deterministic evaluation, ties to the later one)
   with decoder_k, stochastic latent, gathers (state, pre-action) pairs.
3. fit: a fresh decoder_{k+1} by supervised flow matching / diffusion regression from
   N(0, I) noise to those pre-actions.

decoder_0 is the identity (an all-zero network), so stage 0 is Gaussian PPO through an
identity map. Per-stage artifacts go to ``stages/stage<k>/`` in the run directory
(:func:`gorl.rundir.stage_path`); every stage appends its evaluations, metrics and probes
to the one :class:`~gorl.core.run.Run`, which owns the run's records.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from gorl import rundir
from gorl.algorithm.decoder import (CHECKPOINT_METRICS, FIT_SCHEDULES, IDENTITY_KINDS, SPLITS, Decoder,
                                   DecoderFitConfig, fit_decoder)
from gorl.algorithm.episode_filter import (FILTER_UNITS, FILTERS, episodes_of_rows, reference_blocks,
                                           rows_of_episodes, select_episodes, stage_seed)
from gorl.config import defaults_from
from gorl.core import jax_rollout
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.core.loop import progress_bar
from gorl.core.normalizer import RunningNormalizer
from gorl.core.onpolicy import OnPolicyConfig, OnPolicyTrainer, env_action
from gorl.core.run import TRAIN_STREAM, Run, env_seeds, save_torch
from gorl.errors import ConfigError, Diverged, Gated
from gorl.policy import policy_state
from gorl.registry import Algorithm

PRESETS = Path(__file__).parent.parent / "presets" / "gorl_fm.yaml"
DIFFUSION_PRESETS = PRESETS.with_name("gorl_diffusion.yaml")
COLLECT_STREAM = 2_000_000  # + stage: env seeds of the decoder-data collectors
ENCODER_INITS = ("fresh", "warm_start", "gaussian_warm_value")
COLLECTIONS = ("episodes", "reference", "release")
ACTION_SEMANTICS = ("pre_tanh", "bounded")


@dataclass
@defaults_from(PRESETS)
class GoRLConfig(OnPolicyConfig):
    """Latent PPO (the shared machinery's fields) plus GoRL's stages and decoder.

    ``num_evals`` counts evaluations *per stage*; ``total_steps`` is the encoder's budget
    over all stages (the x-axis), split across stages in the ratio of ``stage_steps``.
    """

    decoder_kind: ClassVar[str] = "fm"
    PER_STAGE_KEYS: ClassVar[tuple[str, ...]] = (
        "learning_rate", "adam_eps", "max_grad_norm", "num_epochs", "gamma", "gae_lambda", "reward_scaling",
        "value_loss_coef", "normalize_advantage", "obs_norm_mode", "obs_stats_timing", "clip_eps", "latent_reg",
        "latent_reg_coef", "entropy_coef", "scale_cap", "encoder_init",
        # the humanoid profile's per-stage decoder and hand-off (spec 14): decoder k is fitted with
        # stage k's values, the encoder stage k hands on is chosen by stage k's
        "decoder_max_epochs", "decoder_pairwise_weight", "decoder_init", "decoder_obs_stats", "encoder_handoff")
    """Keys that may differ per stage: the stage's encoder and its PPO machinery, which the
    algorithm reads through :meth:`for_stage`, and the per-stage decoder fit of the humanoid
    profile. Every other key (geometry, budget, evaluation, networks, the collector and the rest
    of the decoder fit) holds for the whole run."""

    stage_steps: list[int]
    """Encoder env-step budget of each stage; scaled proportionally when total_steps differs from their sum."""
    actor_hidden: list[int]
    """Encoder hidden layers; it outputs the latent's mean and pre-scale (2 x d_a)."""
    clip_eps: float
    """PPO clip of the latent ratio (per stage: ``stage0`` / ``later_stages`` / ``stage<k>`` tables)."""
    latent_reg_coef: float
    """Latent regulariser coefficient c_z (per stage like every encoder key)."""
    stage_overrides: dict[str, dict[str, Any]]
    """Per-stage values: {'stage0' | 'later_stages' | 'stage<k>': {key: value}}; stage k's config
    is :meth:`for_stage` (the plain value, then its family table, then its own table); the keys
    that may vary per stage are :attr:`PER_STAGE_KEYS`."""
    latent_reg: str
    """'l2' = c_z (mean mu^2 + mean sigma^2) (reference code) or 'kl' = exact KL to N(0, I)."""
    entropy_coef: float
    """Entropy bonus of the latent Gaussian (no tanh term)."""
    scale_cap: float | None
    """Upper clip of the latent scale."""
    fresh_encoder_each_stage: bool
    """True (v1): every stage starts a new encoder, critic, optimiser and statistics from
    the same seed. False: carry the previous stage's last encoder, critic and statistics
    (then ``encoder_init`` must be 'fresh' in every stage)."""
    encoder_init: str
    """How the stage's encoder starts (per stage; stage 0 is always 'fresh'): 'fresh' (v1: new
    actor, critic, optimiser and statistics, the same initial weights every stage),
    'warm_start' (the previous stage's best encoder: its actor, critic and observation
    statistics, a new optimiser) or 'gaussian_warm_value' (a new actor whose output layer is
    zeroed so that it starts as N(0, I), with the previous best's critic and statistics)."""
    best_ties: str
    """Which of equal evaluations a stage keeps as its best encoder: 'later' (v1, within 1e-6)
    or 'earlier' (the release: a strictly higher return replaces the best)."""
    collect_steps: int | None
    """Transitions collected per stage for the decoder fit (whole env steps of collect_envs envs);
    'episodes' and 'reference' collections only (null with 'release', which counts episodes)."""
    collect_envs: int
    """Parallel envs of the collector."""
    decoder_collection: str
    """'episodes': the collector's envs run episodes with the env's time limit, from their own
    seeded resets (reset_mode random) or the training envs' fixed first states (fixed_initial).
    'reference' (spec 6.3): one continuous trajectory of collect_steps / collect_envs steps per
    env without the time limit, from the training envs' first states (restored if an episode
    terminates)."""
    decoder_hidden: list[int]
    """Decoder network hidden layers."""
    decoder_steps: int
    """Euler steps (fm) or diffusion indices T (diffusion)."""
    decoder_learning_rate: float
    """Adam learning rate of the decoder fit."""
    decoder_batch_size: int
    """Rows per decoder minibatch."""
    decoder_max_epochs: int | None
    """Maximum decoder epochs (an epoch = floor(n_train / batch) steps); with 'steps' and
    decoder_train_steps set it is not used and must be null."""
    decoder_patience: int | None
    """'epochs': stop after this many epochs without a better validation loss; 'steps' never
    stops early (null)."""
    decoder_mc_samples: int
    """(noise, time) samples per action in the regression loss."""
    decoder_max_samples: int
    """Subsample the collected rows to at most this many (without replacement)."""
    decoder_val_fraction: float
    """Validation split, by transition."""
    decoder_max_val_batches: int
    """Validation batches: per epoch, at most ('epochs'); the fixed batches drawn once with
    replacement ('steps', release: 8)."""
    decoder_data_filter: str
    """Episode filter before the fit (spec 6.7, off in the paper's pipeline): 'none', 'percentile',
    'min_return' or 'hybrid' (gorl/algorithm/episode_filter.py). Any filter drops the rows of
    episodes still running when collection ends."""
    decoder_filter_unit: str
    """What the filter ranks (spec 6.3): 'episodes' (true episodes by their return) or
    'reference_blocks' (the reference trainer's 'episodes': consecutive 1000-row blocks of the
    time-major rows by reward sum, hybrid count rounded down)."""
    decoder_filter_quantile: float
    """'percentile' and 'hybrid': keep (or favour) episodes with return >= this quantile."""
    decoder_filter_min_return: float
    """'min_return': keep episodes with return >= this value."""
    decoder_filter_high_quality_ratio: float
    """'hybrid': share of the drawn episodes that come from the high-return set."""
    collect_episodes: int | None
    """``decoder_collection`` 'release': complete episodes collected per stage, ``collect_envs``
    at a time, each from a fresh seeded reset (null with the other collections)."""
    stage0_decoder: str
    """Stage 0's decoder: 'zero_network' (v1: the sampler on an all-zero network: z for FM,
    1.052 z for diffusion) or 'exact' (the release's identity decoder: z)."""
    decoder_fit_schedule: str
    """'epochs' (v1: permutation epochs, validation once per epoch, early stopping after
    decoder_patience) or 'steps' (release: decoder_train_steps batches drawn with replacement,
    validation at steps 0, 1, every decoder_eval_interval and the last, no early stopping)."""
    decoder_train_steps: int | None
    """'steps': optimiser steps; null = decoder_max_epochs x floor(n_train / decoder_batch_size)."""
    decoder_eval_interval: int | None
    """'steps': validate every this many steps (on decoder_max_val_batches fixed batches);
    null with 'epochs' (once per epoch)."""
    decoder_checkpoint_metric: str
    """Keep the decoder with the lowest 'val_loss' or 'val_endpoint_mse' (validation actions
    decoded from z ~ N(0, I); 'steps' only)."""
    decoder_split: str
    """Validation split by 'transition' (v1) or by whole 'episode' (decoder_collection 'release')."""
    decoder_target_clip: float | None
    """Clip the pre-tanh decoder targets to [-c, c] before the fit (null: no clip)."""
    decoder_zero_init_last: bool
    """Zero the fitted decoder's output layer at initialisation (it starts as the identity map)."""
    decoder_output_scale: float
    """The decoder network's output is multiplied by this."""
    diffusion_schedule: str
    """Diffusion decoder: 'cosine' (v1, with 'epsilon') or 'linear_alpha_bar' (release, with
    'epsilon_delta': abar(t) = 1e-3 + (1 - 1e-3)(1 - t))."""
    diffusion_parameterization: str
    """Diffusion decoder: 'epsilon' (v1) or 'epsilon_delta' (release: identity-centred)."""
    decoder_pairwise_weight: float
    """Weight of the loss mean (g(s, z) - a)^2 on each row's stored latent z (decoder_collection 'release')."""
    decoder_val_redraw: bool
    """'steps': new validation batches at every validation and random endpoint rows (release
    FishSwim FM) instead of fixed ones."""
    seed_scheme: str
    """Collection and decoder seeds: 'v1' (hashed from seed, stage and role) or 'release'
    (seed + 992 + 1001 k for stage k's collection, seed + 12 + 10 k for the decoder fitted on it)."""
    # -- the teacher path and bounded actions (the release's humanoid profile, spec 14) -----
    teacher: str
    """'none' (stage 0 starts from the identity decoder) or the algorithm of a teacher run
    (``ppo_teacher``) whose episodes decoder 0 is fitted on (gorl/algorithm/teacher.py)."""
    teacher_run: str | None
    """The teacher's run directory; null: the run trains its own into ``<run dir>/teacher/``."""
    teacher_episodes: int
    """Complete teacher episodes collected for decoder 0 (collect_envs at a time)."""
    teacher_min_return: float | None
    """The gate: a teacher data set with a lower mean episode return ends the run as ``gated``."""
    teacher_warm_start: bool
    """Stage 0's encoder starts from the teacher's actor, critic and observation statistics."""
    action_semantics: str
    """'pre_tanh': the decoder outputs a pre-action, the env receives its tanh, decoder targets
    are pre-actions. 'bounded': the decoder outputs the action, the env receives it clipped to
    [-1, 1], decoder targets are env actions clipped to [-1, 1]."""
    latent_bounded: bool
    """The latent is tanh of the encoder's Gaussian sample (in [-1, 1]; the ratio is over the
    sample, the entropy gets the tanh term)."""
    encoder_handoff: str
    """Which encoder of stage k is handed on: it collects decoder k+1's data and is the one a warm
    start of stage k+1 (``encoder_init``) starts from: 'best' (by evaluation, ``best_ties``) or 'final'."""
    benchmark_start_steps: int
    """Where the curve starts on the x axis (the release's benchmark anchor: HumanoidRun's
    GoRL curve starts at 60M, its teacher-warm-started encoder standing for the first 60M)."""
    decoder_init: str
    """'fresh' (a new network per fit) or 'warm' (continue from the current decoder; from the
    identity decoder it is fresh)."""
    decoder_obs_stats: str
    """The fitted decoder's observation statistics: 'fit' (its training split), with a warm
    decoder 'frozen' (the previous decoder's) or 'cumulative' (pooled over every fit so far)."""

    # -- derived ---------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.stage_steps)

    def stage_iterations(self) -> list[int]:
        """Whole encoder iterations per stage after scaling stage_steps to total_steps."""
        total = sum(self.stage_steps)
        return [int(self.total_steps * s / total) // self.steps_per_iteration for s in self.stage_steps]

    @property
    def effective_steps(self) -> int:
        """The encoder budget trained: every stage's share rounded down to whole iterations."""
        return sum(self.stage_iterations()) * self.steps_per_iteration

    def stage_offsets(self) -> list[int]:
        """Global env step (x axis) at which each stage's encoder starts."""
        its = self.stage_iterations()
        return [self.benchmark_start_steps + sum(its[:k]) * self.steps_per_iteration for k in range(len(its))]

    def for_stage(self, k: int) -> "GoRLConfig":
        """The config of stage k: every per-stage value of stage k in the plain fields (the plain
        value, then ``stage0`` or ``later_stages``, then ``stage<k>``); no stage tables left."""
        if not 0 <= k < self.num_stages:
            raise ConfigError(f"stage {k} does not exist: stage_steps has {self.num_stages} stages")
        values: dict[str, Any] = {}
        for table in (("stage0" if k == 0 else "later_stages"), f"stage{k}"):
            values.update(self.stage_overrides.get(table, {}))
        stage = dataclasses.replace(self, stage_overrides={}, **copy.deepcopy(values))
        stage.stage_index = k  # not a field: marks one stage's config (validated as one stage)
        return stage

    def stage_config(self, k: int) -> OnPolicyConfig:
        """The shared machinery's config for stage k's encoder (from :meth:`for_stage`)."""
        scfg = self.for_stage(k)
        base = {f.name: getattr(scfg, f.name) for f in dataclasses.fields(OnPolicyConfig)}
        base["total_steps"] = self.stage_iterations()[k] * self.steps_per_iteration
        return OnPolicyConfig(**base)

    @property
    def diffusion_form(self) -> str:
        return "release" if self.diffusion_schedule == "linear_alpha_bar" else "v1"

    def decoder_fit_config(self) -> DecoderFitConfig:
        return DecoderFitConfig(hidden=self.decoder_hidden, steps=self.decoder_steps,
                                learning_rate=self.decoder_learning_rate, batch_size=self.decoder_batch_size,
                                max_epochs=self.decoder_max_epochs, patience=self.decoder_patience,
                                mc_samples=self.decoder_mc_samples, max_samples=self.decoder_max_samples,
                                val_fraction=self.decoder_val_fraction,
                                max_val_batches=self.decoder_max_val_batches, schedule=self.decoder_fit_schedule,
                                train_steps=self.decoder_train_steps, eval_interval=self.decoder_eval_interval,
                                checkpoint_metric=self.decoder_checkpoint_metric, split=self.decoder_split,
                                target_clip=self.decoder_target_clip, zero_init_last=self.decoder_zero_init_last,
                                output_scale=self.decoder_output_scale, diffusion_form=self.diffusion_form,
                                pairwise_weight=self.decoder_pairwise_weight, val_redraw=self.decoder_val_redraw)

    def collection_seed(self, seed: int, k: int) -> int:
        """Seed of stage k's decoder-data collection (``seed_scheme``)."""
        return seed + 992 + 1001 * k if self.seed_scheme == "release" else stage_seed(seed, k, 1)

    def decoder_seed(self, seed: int, k: int) -> int:
        """Seed of the decoder fitted on stage k's data (``seed_scheme``)."""
        return seed + 12 + 10 * k if self.seed_scheme == "release" else stage_seed(seed, k, 2)

    def validate(self) -> None:
        if not self.stage_steps or any(s <= 0 for s in self.stage_steps):
            raise ConfigError(f"stage_steps must be a non-empty list of positive budgets, got {self.stage_steps}")
        for table, entries in self.stage_overrides.items():
            k = None if table == "later_stages" else int(table[len("stage"):])
            if k is not None and k >= self.num_stages:
                key = next(iter(entries), "")
                raise ConfigError(f"{table}.{key}: stage {k} does not exist (stage_steps has {self.num_stages} "
                                  f"stages, 0 to {self.num_stages - 1})")
            for key in entries:
                if key not in self.PER_STAGE_KEYS:
                    raise ConfigError(f"{table}.{key}: {key} holds for the whole run; per-stage keys are "
                                      f"{', '.join(self.PER_STAGE_KEYS)}")
        if self.stage_overrides:
            for k in range(self.num_stages):
                try:
                    self.for_stage(k).validate()
                except ConfigError as e:
                    raise ConfigError(f"stage {k}: {e}") from None
        if self.clip_eps <= 0:
            raise ConfigError(f"clip_eps must be positive, got {self.clip_eps}")
        if self.latent_reg_coef < 0:
            raise ConfigError(f"latent_reg_coef must be non-negative, got {self.latent_reg_coef}")
        if self.encoder_init not in ENCODER_INITS:
            raise ConfigError(f"encoder_init must be one of {ENCODER_INITS}, got {self.encoder_init!r}")
        if self.best_ties not in ("later", "earlier"):
            raise ConfigError(f"best_ties must be 'later' or 'earlier', got {self.best_ties!r}")
        if getattr(self, "stage_index", None) is None:  # the run's config, not one stage's
            inits = [self.for_stage(k).encoder_init for k in range(self.num_stages)]
            if inits[0] != "fresh":
                raise ConfigError(f"encoder_init: stage 0 has no previous stage to start from, so it must be "
                                  f"'fresh' (set later_stages.encoder_init), got {inits[0]!r}")
            if not self.fresh_encoder_each_stage and set(inits) - {"fresh"}:
                raise ConfigError("encoder_init: fresh_encoder_each_stage=false already carries the last encoder; "
                                  "use one of the two")
        if self.latent_reg not in ("l2", "kl"):
            raise ConfigError(f"latent_reg must be 'l2' or 'kl', got {self.latent_reg!r}")
        # a key the chosen collection or fit schedule does not read must be null, so that no value
        # is accepted and ignored (one-line errors naming it)
        if self.decoder_collection not in COLLECTIONS:
            raise ConfigError(f"decoder_collection must be one of {COLLECTIONS}, got {self.decoder_collection!r}")
        if self.decoder_fit_schedule not in FIT_SCHEDULES:
            raise ConfigError(f"decoder_fit_schedule must be one of {FIT_SCHEDULES}, got {self.decoder_fit_schedule!r}")
        release, steps = self.decoder_collection == "release", self.decoder_fit_schedule == "steps"
        for key, used, why in (
                ("collect_steps", not release, "decoder_collection release counts collect_episodes"),
                ("collect_episodes", release, "only decoder_collection release counts episodes"),
                ("decoder_patience", not steps, "decoder_fit_schedule steps never stops early"),
                ("decoder_eval_interval", steps, "decoder_fit_schedule epochs validates once per epoch"),
                ("decoder_train_steps", steps, "decoder_fit_schedule epochs runs decoder_max_epochs"),
                ("decoder_max_epochs", not (steps and self.decoder_train_steps is not None),
                 "decoder_train_steps sets the fit's length")):
            if used and getattr(self, key) is None and key != "decoder_train_steps":
                raise ConfigError(f"{key} must be set: {self.decoder_collection} collection, "
                                  f"{self.decoder_fit_schedule} fit")
            if not used and getattr(self, key) is not None:
                raise ConfigError(f"{key}={getattr(self, key)!r} would not be used ({why}); set it to null")
        for key in ("collect_steps", "collect_envs", "decoder_steps", "decoder_batch_size", "decoder_max_epochs",
                    "decoder_patience", "decoder_mc_samples", "decoder_max_samples", "decoder_max_val_batches",
                    "collect_episodes", "decoder_eval_interval"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if self.collect_steps is not None and self.collect_steps < self.collect_envs:
            raise ConfigError(f"collect_steps ({self.collect_steps}) must be at least collect_envs "
                              f"({self.collect_envs})")
        for key, options in (("stage0_decoder", IDENTITY_KINDS), ("decoder_fit_schedule", FIT_SCHEDULES),
                             ("decoder_checkpoint_metric", CHECKPOINT_METRICS), ("decoder_split", SPLITS),
                             ("diffusion_schedule", ("cosine", "linear_alpha_bar")),
                             ("diffusion_parameterization", ("epsilon", "epsilon_delta")),
                             ("seed_scheme", ("v1", "release"))):
            if getattr(self, key) not in options:
                raise ConfigError(f"{key} must be one of {options}, got {getattr(self, key)!r}")
        if self.decoder_kind != "diffusion" and (self.diffusion_schedule, self.diffusion_parameterization) != \
                ("cosine", "epsilon"):
            raise ConfigError(f"diffusion_schedule / diffusion_parameterization: gorl_{self.decoder_kind} has no "
                              "diffusion decoder; leave them cosine / epsilon")
        if (self.diffusion_schedule == "linear_alpha_bar") != (self.diffusion_parameterization == "epsilon_delta"):
            raise ConfigError("diffusion_schedule and diffusion_parameterization: implemented are cosine + epsilon "
                              f"(v1) and linear_alpha_bar + epsilon_delta (release), got {self.diffusion_schedule} + "
                              f"{self.diffusion_parameterization}")
        for key in ("decoder_train_steps", "decoder_target_clip"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive or null, got {getattr(self, key)}")
        if self.decoder_output_scale <= 0 or self.decoder_pairwise_weight < 0:
            raise ConfigError(f"decoder_output_scale must be positive and decoder_pairwise_weight non-negative, "
                              f"got {self.decoder_output_scale}, {self.decoder_pairwise_weight}")
        if self.teacher != "none" and getattr(self, "stage_index", None) is None and \
                self.for_stage(0).decoder_pairwise_weight:
            raise ConfigError("decoder_pairwise_weight: decoder 0 is fitted on the teacher's data, which has no "
                              "latents; set stage0.decoder_pairwise_weight to 0")
        if self.decoder_collection != "release" and (self.decoder_split == "episode" or self.decoder_pairwise_weight):
            raise ConfigError("decoder_split episode and decoder_pairwise_weight > 0 need decoder_collection release "
                              f"(episode ids and latents), got {self.decoder_collection!r}")
        if (self.decoder_checkpoint_metric != "val_loss" or self.decoder_val_redraw) and \
                self.decoder_fit_schedule != "steps":
            raise ConfigError("decoder_checkpoint_metric val_endpoint_mse and decoder_val_redraw need "
                              "decoder_fit_schedule steps")
        if self.decoder_collection == "release" and self.decoder_data_filter != "none":
            raise ConfigError("decoder_data_filter: decoder_collection release uses every row (set none)")
        for key, options in (("teacher_warm_start", (True, False)), ("action_semantics", ACTION_SEMANTICS),
                             ("encoder_handoff", ("best", "final")), ("decoder_init", ("fresh", "warm")),
                             ("decoder_obs_stats", ("fit", "frozen", "cumulative"))):
            if getattr(self, key) not in options:
                raise ConfigError(f"{key} must be one of {options}, got {getattr(self, key)!r}")
        if self.teacher != "none":
            from gorl import registry
            try:
                registry.get(self.teacher)
            except KeyError as e:
                raise ConfigError(f"teacher: {e.args[0]}") from None
            if self.teacher_episodes <= 0:
                raise ConfigError(f"teacher_episodes must be positive, got {self.teacher_episodes}")
        elif self.teacher_warm_start or self.teacher_run:
            key = "teacher_warm_start" if self.teacher_warm_start else "teacher_run"
            raise ConfigError(f"{key} needs a teacher (teacher: ppo_teacher), but teacher is 'none'")
        if self.benchmark_start_steps < 0:
            raise ConfigError(f"benchmark_start_steps must be non-negative, got {self.benchmark_start_steps}")
        if self.decoder_obs_stats != "fit" and self.decoder_init != "warm":
            raise ConfigError(f"decoder_obs_stats {self.decoder_obs_stats!r} needs decoder_init 'warm'")
        if self.decoder_data_filter not in FILTERS:
            raise ConfigError(f"decoder_data_filter must be one of {FILTERS}, got {self.decoder_data_filter!r}")
        if self.decoder_filter_unit not in FILTER_UNITS:
            raise ConfigError(f"decoder_filter_unit must be one of {FILTER_UNITS}, got {self.decoder_filter_unit!r}")
        for key in ("decoder_filter_quantile", "decoder_filter_high_quality_ratio"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"{key} must be in [0, 1], got {getattr(self, key)}")
        if not 0 < self.decoder_val_fraction < 1:
            raise ConfigError(f"decoder_val_fraction must be in (0, 1), got {self.decoder_val_fraction}")
        super().validate()

    def validate_budget(self) -> None:
        """Every stage needs at least one encoder iteration (replaces the single-trainer check)."""
        if getattr(self, "stage_index", None) is not None:  # one stage's config: the run's budget is checked once
            return
        its = self.stage_iterations()
        if min(its) < 1:
            k = its.index(min(its))
            raise ConfigError(f"total_steps={self.total_steps} leaves stage {k} with less than one iteration "
                              f"({self.steps_per_iteration} env steps) when split as stage_steps="
                              f"{self.stage_steps}; raise the budget or use fewer stages")


@dataclass
@defaults_from(DIFFUSION_PRESETS)
class GoRLDiffusionConfig(GoRLConfig):
    decoder_kind: ClassVar[str] = "diffusion"


# -- the encoder -------------------------------------------------------------------------
def make_encoder(cfg: GoRLConfig, stage: int, obs_dim: int, act_dim: int, decoder: Decoder) -> GaussianPolicy:
    """Stage ``stage``'s Gaussian policy over z (dim d_a) whose actions pass through the
    frozen decoder (settings from :meth:`GoRLConfig.for_stage`); ``latent_bounded``: z = tanh
    of the Gaussian sample; ``action_semantics`` bounded: the env action is the decoder's output
    clipped to [-1, 1] (spec 14)."""
    scfg = cfg.for_stage(stage)
    decode = (lambda obs, x: decoder(obs, torch.tanh(x))) if scfg.latent_bounded else decoder.forward
    encoder = GaussianPolicy(obs_dim, act_dim, scfg.actor_hidden, clip_eps=scfg.clip_eps,
                             entropy_coef=scfg.entropy_coef, entropy_tanh_correction=scfg.latent_bounded,
                             scale_cap=scfg.scale_cap, latent_reg=scfg.latent_reg,
                             latent_reg_coef=scfg.latent_reg_coef, decode=decode)
    if scfg.action_semantics == "bounded":  # the decoder's output is the action: a final [-1, 1] clip
        encoder.env_action = bounded_action
    return encoder


def bounded_action(action: torch.Tensor) -> torch.Tensor:
    """The env action of a bounded-semantics decoder output: clipped to [-1, 1]."""
    return action.clamp(-1.0, 1.0)


@torch.no_grad()
def gaussian_output_(encoder: GaussianPolicy) -> None:
    """Zero the actor's output layer so that it outputs mean 0 and scale 1 for every state
    (the release's ``gaussian_warm_value`` start): weights 0, mean bias 0, pre-scale bias
    softplus^-1(1 - min_scale)."""
    head = encoder.actor
    last = [m for m in head.net if isinstance(m, torch.nn.Linear)][-1]
    last.weight.zero_()
    last.bias.zero_()
    last.bias[head.out_dim:] = math.log(math.expm1(1.0 - head.min_scale))


# -- decoder data ------------------------------------------------------------------------
@torch.no_grad()
def collect_decoder_data(cfg: GoRLConfig, run: Run, stage: int, encoder: GaussianPolicy,
                         normalizer: RunningNormalizer) -> tuple[np.ndarray, np.ndarray, dict]:
    """(obs, pre-action) rows from the combined policy: z ~ N(mu, sigma), a = g(s, z) (spec 6.3),
    then the episode filter ``cfg.decoder_data_filter`` (default none).

    The collector's envs: ``decoder_collection`` 'reference' and ``reset_mode`` 'fixed_initial'
    start from the training envs' first states (the same seeds; env i of the collector is
    training env i) and return to them; 'reference' also removes the time limit."""
    torch.manual_seed(cfg.collection_seed(run.seed, stage))
    reference = cfg.decoder_collection == "reference"
    if reference or cfg.reset_mode == "fixed_initial":  # the training envs' first states (spec 2.3, 6.3)
        envs = run.make_envs(cfg.collect_envs, TRAIN_STREAM, cfg.env_workers, fixed_initial=True,
                             time_limit=not reference)
    else:
        envs = run.make_envs(cfg.collect_envs, COLLECT_STREAM + stage, cfg.env_workers)
    steps, N = cfg.collect_steps // cfg.collect_envs, envs.num_envs
    obs_rows = torch.empty((steps, N, envs.obs_dim), device=run.device)
    act_rows = torch.empty((steps, N, envs.action_dim), device=run.device)
    done_rows = torch.empty((steps, N), dtype=torch.bool, device=run.device)
    return_rows = torch.empty((steps, N), dtype=torch.float64, device=run.device)  # at episode ends
    reward_rows = torch.empty((steps, N), dtype=torch.float64, device=run.device)
    ep_ret = torch.zeros(N, dtype=torch.float64, device=run.device)
    obs = envs.obs
    # playground: one JAX program (where the encoder has none, the stage's trainer has said so)
    scan = jax_rollout.select(cfg.rollout, envs, encoder, lambda note: None)
    if scan is not None:  # (None for bounded actions: jax_rollout.program refuses an own env_action)
        obs_rows, act_rows, done_rows, reward_rows, return_rows = jax_rollout.collect_rows(envs, scan, normalizer,
                                                                                           steps)
    else:
        for s in range(steps):  # on the device: no host round trip per step
            pre, _ = encoder.act(normalizer(obs), obs)
            action = env_action(encoder, pre)
            # the decoder's target: the pre-action, or (bounded) the env action clipped to [-1, 1]
            obs_rows[s], act_rows[s] = obs, (action if cfg.action_semantics == "bounded" else pre)
            obs, reward, term, trunc, _ = envs.step(action)
            ep_ret += reward
            reward_rows[s] = reward
            done_rows[s] = term | trunc
            return_rows[s] = ep_ret
            ep_ret.masked_fill_(done_rows[s], 0.0)
    envs.close()
    obs_rows = obs_rows.reshape(-1, envs.obs_dim).cpu().numpy()
    act_rows = act_rows.reshape(-1, envs.action_dim).cpu().numpy()
    row_episode, episode_return = episodes_of_rows(done_rows.cpu().numpy(), return_rows.cpu().numpy())
    finished = np.flatnonzero(np.isfinite(episode_return))
    returns = episode_return[finished]
    blocks = cfg.decoder_filter_unit == "reference_blocks"
    if cfg.decoder_data_filter == "none":
        rows = np.arange(obs_rows.shape[0])
    elif blocks:  # the reference trainer's 1000-row "episodes" of the time-major rows
        row_block, block_return = reference_blocks(reward_rows.cpu().numpy())
        picked = select_episodes(block_return, cfg.decoder_data_filter, quantile=cfg.decoder_filter_quantile,
                                 min_return=cfg.decoder_filter_min_return,
                                 high_quality_ratio=cfg.decoder_filter_high_quality_ratio,
                                 rng=np.random.default_rng(stage_seed(run.seed, stage, 3)), reference=True)
        rows = rows_of_episodes(row_block, picked, block_return.shape[0])
    else:
        picked = finished[select_episodes(returns, cfg.decoder_data_filter, quantile=cfg.decoder_filter_quantile,
                                          min_return=cfg.decoder_filter_min_return,
                                          high_quality_ratio=cfg.decoder_filter_high_quality_ratio,
                                          rng=np.random.default_rng(stage_seed(run.seed, stage, 3)))]
        row_episode = np.where(np.isfinite(episode_return[row_episode]), row_episode, -1)
        rows = rows_of_episodes(row_episode, picked, episode_return.shape[0])
    if rows.size == 0:
        raise ValueError(f"stage {stage}: decoder_data_filter={cfg.decoder_data_filter!r} "
                         f"({cfg.decoder_filter_unit}) kept no rows of {finished.shape[0]} finished episodes "
                         f"(returns {returns.min(initial=np.nan):.3g} to {returns.max(initial=np.nan):.3g}); "
                         "loosen the filter")
    finite = np.isfinite(act_rows[rows]).all(1) & np.isfinite(obs_rows[rows]).all(1)
    dropped, rows = int((~finite).sum()), rows[finite]
    obs_rows, act_rows = obs_rows[rows], act_rows[rows]
    summary = {"stage": stage, "rows": int(rows.shape[0]), "dropped_non_finite": dropped,
               "env_steps": int(steps * N), "envs": N,
               "episodes_finished": int(finished.shape[0]),
               "episode_return_mean": float(np.mean(returns)) if returns.size else None,
               "collection": cfg.decoder_collection, "reset_mode": cfg.reset_mode,
               "filter": cfg.decoder_data_filter, "filter_unit": cfg.decoder_filter_unit,
               "action_mean": act_rows.mean(0).tolist(), "action_std": act_rows.std(0).tolist(),
               "action_min": act_rows.min(0).tolist(), "action_max": act_rows.max(0).tolist()}
    return obs_rows, act_rows, summary


CHECK_EVERY = 50
"""The release collector's loop reads whether any episode of the batch still runs every 50 steps."""


def _release_batch_through_the_scan(envs, scan, normalizer, active: torch.Tensor, every: int, latent_bounded: bool):
    """One batch of :func:`collect_release_data` as one scan from the envs' fresh reset: the rows
    the per-step loop records (obs, pre-action, latent, whether the env's episode still ran; each
    (E, n, ...)), the returns it sums and the n steps it runs (to the first check, every ``every``
    steps, where no episode runs). The scan runs the time limit's steps rounded up to a check, so
    it may run past n; torch's generator is then set back and advanced by n steps' draws, as the
    loop leaves it."""
    gen = torch.cuda.default_generators[active.device.index or 0] if active.device.type == "cuda" \
        else torch.default_generator
    before = gen.get_state()
    S = -(-envs.episode_length // every) * every
    obs, pre, stored, reward, done = jax_rollout.rollout_rows(envs, scan, normalizer, S)
    ended = torch.cumsum(done.int(), 0) > 0                         # (S, E): an episode end at or before s
    ran = active & torch.cat([torch.zeros_like(ended[:1]), ended[:-1]]).logical_not()  # before step s
    alive = (active & ~ended)[every - 1::every].any(1).tolist()    # after each check (one host read)
    if all(alive):
        raise RuntimeError(f"the release collector's episodes still ran after {S} steps (the time limit is "
                           f"{envs.episode_length})")
    n = (alive.index(False) + 1) * every
    if n < S:  # the loop drew n steps' noise
        gen.set_state(before)
        jax_rollout.draw_noises(scan, n, envs.num_envs, active.device)
    r, kept = reward[:n].cpu().numpy(), ran[:n].cpu().numpy()
    ret = np.zeros(r.shape[1])
    for s in range(n):  # the loop's float64 sum, in its order
        ret += r[s] * kept[s]
    z = torch.tanh(stored["x"]) if latent_bounded else stored["x"]  # what the decoder received
    rows = {"obs": obs, "action": pre, "latent": z, "active": ran}
    return {k: v[:n].transpose(0, 1) for k, v in rows.items()}, torch.as_tensor(ret, device=active.device), n


@torch.no_grad()
def collect_release_data(cfg: GoRLConfig, run: Run, stage: int, encoder: GaussianPolicy,
                         normalizer: RunningNormalizer) -> dict:
    """The release's decoder data: ``collect_episodes`` complete episodes, ``collect_envs`` at a
    time, each from a fresh reset (episode i seeded by the i-th seed of the stage's collection
    stream), acting z ~ N(mu, sigma), a = g(s, z); every row until the episode ends, no filter.
    Returns obs, pre-action, latent z and episode id per row, and the summary."""
    seed = cfg.collection_seed(run.seed, stage)
    torch.manual_seed(seed)
    E, n_eps = cfg.collect_envs, cfg.collect_episodes
    seeds = env_seeds(seed, COLLECT_STREAM, -(-n_eps // E) * E)
    envs = run.make_envs(E, COLLECT_STREAM + stage, cfg.env_workers)
    # playground: each batch's episodes as one JAX program of the time limit's steps (rounded up to
    # the loop's checks), which draws the noise of the per-step loop below in its order (where the
    # encoder has no program, the stage's trainer has said so already: no note here)
    scan = jax_rollout.select(cfg.rollout, envs, encoder, lambda note: None) \
        if getattr(envs, "episode_length", None) else None
    pieces: dict[str, list] = {"obs": [], "action": [], "latent": [], "episode": []}
    returns, lengths, env_steps = [], [], 0
    for first in range(0, n_eps, E):
        m = min(E, n_eps - first)  # the last batch's extra envs run but are not recorded
        obs = envs.reset(seeds[first:first + E])
        active = torch.arange(E, device=run.device) < m
        ret = torch.zeros(E, dtype=torch.float64, device=run.device)
        steps: dict[str, list] = {"obs": [], "action": [], "latent": [], "active": []}
        if scan is not None:
            steps, ret, n = _release_batch_through_the_scan(envs, scan, normalizer, active, CHECK_EVERY,
                                                            cfg.latent_bounded)
            env_steps += n * E
        else:
            while True:  # on the device; whether any episode still runs is read every CHECK_EVERY steps
                pre, stored = encoder.act(normalizer(obs), obs)
                action = env_action(encoder, pre)
                target = action if cfg.action_semantics == "bounded" else pre  # bounded: the clipped action
                z = torch.tanh(stored["x"]) if cfg.latent_bounded else stored["x"]  # what the decoder received
                for key, v in (("obs", obs), ("action", target), ("latent", z), ("active", active.clone())):
                    steps[key].append(v)
                obs, reward, term, trunc, _ = envs.step(action)
                env_steps += E
                ret += reward * active
                active &= ~(term | trunc)
                if len(steps["obs"]) % CHECK_EVERY == 0 and not bool(active.any()):
                    break
            steps = {key: torch.stack(v, 1) for key, v in steps.items()}  # (E, S, ...)
        mask = steps.pop("active")  # (E, S): episode-major rows
        for key, v in steps.items():
            pieces[key].append(v[mask].cpu())
        pieces["episode"].append((first + torch.arange(E, device=run.device))[:, None].expand_as(mask)[mask].cpu())
        returns.append(ret[:m].cpu().numpy())
        lengths.append(mask.sum(1)[:m].cpu().numpy())
    envs.close()
    data = {k: torch.cat(v).numpy() for k, v in pieces.items()}
    returns, lengths = np.concatenate(returns), np.concatenate(lengths)
    finite = np.isfinite(data["action"]).all(1) & np.isfinite(data["obs"]).all(1)
    dropped = int((~finite).sum())
    data = {k: v[finite] for k, v in data.items()}
    act = data["action"]
    data["summary"] = {"stage": stage, "rows": int(act.shape[0]), "dropped_non_finite": dropped,
                       "env_steps": int(env_steps), "envs": E, "episodes_finished": int(n_eps),
                       "episode_return_mean": float(returns.mean()), "episode_length_mean": float(lengths.mean()),
                       "collection": cfg.decoder_collection, "collection_seed": seed, "reset_mode": "random",
                       "filter": "none", "filter_unit": cfg.decoder_filter_unit,
                       "action_mean": act.mean(0).tolist(), "action_std": act.std(0).tolist(),
                       "action_min": act.min(0).tolist(), "action_max": act.max(0).tolist()}
    return data


# -- the stage loop ----------------------------------------------------------------------
class GoRL:
    """Holds the run-level state across stages and writes one checkpoint for all of it."""

    def __init__(self, cfg: GoRLConfig, run: Run):
        self.cfg, self.run = cfg, run
        self.obs_dim, self.act_dim = run.env_dims()
        self.stage = 0
        self.decoder = self._decoder(identity=True).to(run.device)
        self.carry: dict | None = None  # previous stage's encoder/critic/statistics (fresh_encoder_each_stage False)
        self.best: dict | None = None  # this stage's best encoder so far
        self.previous_best: dict | None = None  # the last stage's best (encoder_init warm starts)
        self.timing = {"collect": 0.0, "decoder_fit": 0.0}
        self.collection_env_steps = 0
        self.final: dict | None = None  # the stage's final encoder (encoder_handoff final)
        self.decoder_identity = True   # decoder 0 without a teacher
        self.decoder_rows = 0          # rows of every fit so far (decoder_obs_stats cumulative)
        self.teacher: dict | None = None  # the teacher's facts once its data set is in (status.json)

    def _decoder(self, identity: bool) -> Decoder:
        """Stage 0's identity decoder (``stage0_decoder``) or the shell of a fitted one."""
        cfg = self.cfg
        return Decoder(cfg.decoder_kind, self.obs_dim, self.act_dim, cfg.decoder_hidden, cfg.decoder_steps,
                       identity=cfg.stage0_decoder if identity else False, output_scale=cfg.decoder_output_scale,
                       diffusion_form=cfg.diffusion_form)

    def stage_dir(self, k: int) -> Path:
        return rundir.stage_path(self.run.dir, k, create=True)

    def state_dict(self, trainer: OnPolicyTrainer | None) -> dict:
        return {"gorl": {"stage": self.stage, "decoder": self.decoder.state_dict(),
                         "decoder_identity": self.decoder_identity, "carry": self.carry, "best": self.best,
                         "previous_best": self.previous_best,
                         "timing": self.timing, "collection_env_steps": self.collection_env_steps,
                         "decoder_rows": self.decoder_rows, "teacher": self.teacher},
                "trainer": None if trainer is None else trainer.state_dict()}

    def load_state_dict(self, st: dict) -> dict | None:
        g = st["gorl"]
        self.stage = g["stage"]
        self.decoder = self._decoder(identity=g["decoder_identity"]).to(self.run.device)
        self.decoder.load_state_dict(g["decoder"])
        self.decoder_identity = g["decoder_identity"]
        self.decoder_rows, self.teacher = g.get("decoder_rows", 0), g.get("teacher")
        self.carry, self.best, self.previous_best = g["carry"], g["best"], g.get("previous_best")
        self.timing, self.collection_env_steps = g["timing"], g["collection_env_steps"]
        return st["trainer"]

    def save(self, trainer: OnPolicyTrainer | None) -> None:
        self.run.save_checkpoint(self.state_dict(trainer))

    # -- one stage ---------------------------------------------------------------------
    def make_trainer(self, k: int) -> OnPolicyTrainer:
        cfg, scfg = self.cfg, self.cfg.for_stage(k)
        torch.manual_seed(self.run.seed)  # v1: every stage's encoder starts from the same initial weights
        encoder = make_encoder(cfg, k, self.obs_dim, self.act_dim, self.decoder)
        trainer = OnPolicyTrainer(cfg.stage_config(k), self.run, encoder, step_offset=cfg.stage_offsets()[k],
                                  stage=k, env_stream=TRAIN_STREAM, staged_evals=True)
        trainer.probe_states = self.run.records.probe_states  # one set of probe states for the whole run
        if k == 0 and cfg.teacher_warm_start:
            self._warm_start_from_teacher(trainer)
        if self.carry is not None:
            trainer.agent.load_state_dict(self.carry["agent"])
            trainer.critic.load_state_dict(self.carry["critic"])
            trainer.normalizer.load_state_dict(self.carry["normalizer"])
        if scfg.encoder_init != "fresh":  # from the previous stage's best encoder; a new optimiser
            prev = self.previous_best
            if scfg.encoder_init == "warm_start":
                trainer.agent.load_state_dict(prev["agent"])
            else:  # gaussian_warm_value: new actor, starting as N(0, I)
                gaussian_output_(trainer.agent)
            trainer.critic.load_state_dict(prev["critic"])
            trainer.normalizer.load_state_dict(copy.deepcopy(prev["normalizer"]))
            trainer.normalizer.to(trainer.device)
        trainer.normalizer.mode = trainer.cfg.obs_norm_mode  # carried statistics update as this stage says
        torch.manual_seed(stage_seed(self.run.seed, k, 0))  # the stage's rollout noise
        trainer.on_evaluate.append(lambda row, t=trainer: self._track_best(t, row))
        trainer.on_evaluate.append(lambda row, t=trainer: self.run.offer_best_policy(row, lambda: policy_state(
            t.agent, t.normalizer, stage=t.stage, env_step=row["env_step"], decoder=self.decoder)))
        return trainer

    def _warm_start_from_teacher(self, trainer: OnPolicyTrainer) -> None:
        """Stage 0's encoder, critic and statistics from the teacher's (same architecture)."""
        from gorl.algorithm.teacher import load_teacher, teacher_dir
        teacher = load_teacher(teacher_dir(self.cfg, self.run), self.obs_dim, self.act_dim, self.run.device,
                               critic=True)
        if teacher["actor_hidden"] != list(self.cfg.actor_hidden) or \
                teacher["obs_norm_mode"] != self.cfg.for_stage(0).obs_norm_mode:
            raise ConfigError(f"teacher_warm_start: the teacher's actor {teacher['actor_hidden']} and obs_norm_mode "
                              f"{teacher['obs_norm_mode']!r} must match the encoder's ({self.cfg.actor_hidden}, "
                              f"{self.cfg.for_stage(0).obs_norm_mode!r})")
        trainer.agent.actor.load_state_dict(teacher["agent"].actor.state_dict())
        trainer.critic.load_state_dict(teacher["critic"])
        trainer.normalizer.load_state_dict(teacher["normalizer"].state_dict())
        trainer.normalizer.to(self.run.device)

    def prepare_teacher(self) -> None:
        """Before stage 0 (``teacher`` set): the teacher run (trained now if it is the run's own),
        its data set, the gate, decoder 0 fitted on it; recorded in stages/teacher/ and status.json."""
        from gorl.algorithm import teacher as tp
        cfg, run = self.cfg, self.run
        t_teacher = time.perf_counter()
        d = tp.ensure_teacher(cfg, run)
        t0 = time.perf_counter()
        self.timing["teacher"] = t0 - t_teacher  # training the run's own teacher (0 for a named one)
        teacher = tp.load_teacher(d, self.obs_dim, self.act_dim, run.device)
        obs, actions, episode, summary = tp.collect_teacher_data(cfg, run, teacher)
        t1 = time.perf_counter()
        self.teacher = {"teacher_run": summary["teacher_run"], "teacher_env_steps": summary["teacher_env_steps"],
                        "teacher_collection_env_steps": summary["env_steps"],
                        "teacher_dataset_return_mean": summary["episode_return_mean"],
                        "teacher_dataset_episodes": summary["episodes"]}
        run.extra_status.update(self.teacher)
        out = rundir.stage_path(run.dir, 0).parent / rundir.TEACHER_STAGE
        rundir.write_json(out / rundir.STAGE_DATASET_SUMMARY, summary)
        try:
            tp.gate(cfg, summary)
        except Gated:  # a recorded end: the contract's files, then status gated with the reason
            run.write_records()
            self.save(None)
            raise
        self.fit(0, obs, actions, seed=stage_seed(run.seed, 0, 5), history_dir=out, episode=episode)
        self.timing["collect"] += t1 - t0
        self.timing["decoder_fit"] += time.perf_counter() - t1
        summary["collect_s"] = round(t1 - t0, 3)
        rundir.write_json(out / rundir.STAGE_DATASET_SUMMARY, summary)

    def fit(self, k: int, obs: np.ndarray, actions: np.ndarray, seed: int, history_dir: Path,
            episode: np.ndarray | None = None, latent: np.ndarray | None = None) -> list[dict]:
        """Fit decoder k (the one stage k runs on) as stage k's settings say (fresh or warm, its
        statistics) on the rows; ``episode`` / ``latent``: the release collection's per-row ids and z."""
        cfg = self.cfg.for_stage(k)
        warm = cfg.decoder_init == "warm" and not self.decoder_identity
        decoder, history = fit_decoder(cfg.decoder_kind, obs, actions, cfg.decoder_fit_config(), seed,
                                       self.run.device, episode=episode, latent=latent,
                                       init=self.decoder if warm else None,
                                       obs_stats=cfg.decoder_obs_stats if warm else "fit",
                                       prior_rows=self.decoder_rows)
        rundir.write_csv(history_dir / rundir.STAGE_DECODER_FIT, history)
        if not all(math.isfinite(h["val_loss"]) for h in history):
            raise Diverged(f"stage {k}: non-finite decoder loss while fitting a decoder")
        self.decoder, self.decoder_identity = decoder, False
        self.decoder_rows += obs.shape[0]
        return history

    def _track_best(self, trainer: OnPolicyTrainer, row: dict) -> None:
        """Keep the encoder with the best deterministic evaluation (``best_ties``: the later
        or the earlier of equal ones); its critic travels with it for warm starts."""
        new = self.best is None or self.best["stage"] != trainer.stage
        if new or (row["return_mean"] > self.best["return"] if self.cfg.best_ties == "earlier"
                   else row["return_mean"] >= self.best["return"] - 1e-6):
            self.best = {"stage": trainer.stage, "return": row["return_mean"], "env_step": row["env_step"],
                         "agent": copy.deepcopy(trainer.agent.state_dict()),
                         "critic": copy.deepcopy(trainer.critic.state_dict()),
                         "normalizer": copy.deepcopy(trainer.normalizer.state_dict())}

    def refit_decoder(self, k: int) -> None:
        """Collect with stage k's best encoder + decoder_k, fit decoder_{k+1}, save artifacts."""
        cfg, run = self.cfg, self.run
        t0 = time.perf_counter()
        save_torch(self.stage_dir(k) / rundir.STAGE_ENCODER_BEST, self.best)
        scfg = cfg.for_stage(k)
        handed = self.best if scfg.encoder_handoff == "best" else self.final
        encoder = make_encoder(cfg, k, self.obs_dim, self.act_dim, self.decoder).to(run.device)
        encoder.load_state_dict(handed["agent"])
        normalizer = RunningNormalizer(self.obs_dim, scfg.obs_norm_mode).to(run.device)
        normalizer.load_state_dict(handed["normalizer"])
        episode = latent = None
        if cfg.decoder_collection == "release":
            data = collect_release_data(scfg, run, k, encoder, normalizer)
            obs, actions, episode, latent, summary = (data[key] for key in
                                                      ("obs", "action", "episode", "latent", "summary"))
        else:
            obs, actions, summary = collect_decoder_data(scfg, run, k, encoder, normalizer)
        t1 = time.perf_counter()
        run.log(f"stage {k}: collected {summary['rows']:,} rows ({summary['env_steps']:,} env steps, "
                f"{summary['episodes_finished']} episodes) with the {scfg.encoder_handoff} encoder of the stage "
                f"(best return {self.best['return']:.1f} at env step {self.best['env_step']:,}) in {t1 - t0:.1f}s")
        run.stop_if_requested()
        history = self.fit(k + 1, obs, actions, cfg.decoder_seed(run.seed, k), self.stage_dir(k),
                           episode=episode, latent=latent)
        t2 = time.perf_counter()
        self.timing["collect"] += t1 - t0
        self.timing["decoder_fit"] += t2 - t1
        self.collection_env_steps += summary["env_steps"]
        summary.update(encoder_handoff=cfg.for_stage(k).encoder_handoff,
                       best_encoder_env_step=self.best["env_step"], best_encoder_return=self.best["return"],
                       collect_s=round(t1 - t0, 3), decoder_fit_s=round(t2 - t1, 3),
                       decoder_epochs=len(history),  # validations ('steps': at 0, 1, every interval, last)
                       decoder_steps=(history[-1]["steps"] if "steps" in history[-1] else history[-1]["step"])
                       if history else 0,
                       decoder_best_val_loss=min((h["val_loss"] for h in history), default=None))
        if cfg.decoder_fit_schedule == "steps":
            metric = cfg.decoder_checkpoint_metric
            best = min(history, key=lambda h: h[metric])  # the earliest of equal ones, as the fit keeps
            summary.update(decoder_checkpoint_metric=metric, decoder_best_step=best["step"],
                           decoder_best_value=best[metric], decoder_train_steps=history[-1]["step"])
        rundir.write_json(self.stage_dir(k) / rundir.STAGE_DATASET_SUMMARY, summary)
        unit = "validations" if cfg.decoder_fit_schedule == "steps" else "epochs"  # the rows of decoder_fit.csv
        run.log(f"stage {k}: decoder {k + 1} fitted: {len(history)} {unit}, {summary['decoder_steps']:,} steps, "
                f"best validation loss {summary['decoder_best_val_loss']:.4g} in {t2 - t1:.1f}s")

    def save_decoder_artifact(self, k: int) -> None:
        save_torch(self.stage_dir(k) / rundir.STAGE_DECODER, self.decoder.to_plain())

    # -- the run -----------------------------------------------------------------------
    def train(self) -> None:
        cfg, run = self.cfg, self.run
        trainer_state = None
        state = run.load_checkpoint()
        if state is not None:
            trainer_state = self.load_state_dict(state)
            run.log(f"resumed from {run.checkpoint_path} in stage {self.stage}")
            if trainer_state is None:  # else once the stage's trainer has it (below)
                run.replace_pickled_checkpoints(lambda: self.state_dict(None))
        run.extra_status.update(start_env_step=cfg.benchmark_start_steps, **(self.teacher or {}))
        if cfg.teacher != "none" and self.teacher is None:
            self.prepare_teacher()
            self.save(None)
        total = cfg.benchmark_start_steps + sum(cfg.stage_iterations()) * cfg.steps_per_iteration
        with progress_bar(run, total, cfg.stage_offsets()[self.stage]) as bar:
            for k in range(self.stage, cfg.num_stages):
                self.stage = k
                self.save_decoder_artifact(k)
                trainer = self.make_trainer(k)
                self.decoder.sampling_time = 0.0  # rollouts + evaluations of this stage
                if trainer_state is not None:
                    trainer.load_state_dict(trainer_state)
                    trainer_state = None
                    run.replace_pickled_checkpoints(lambda t=trainer: self.state_dict(t))
                    bar.n = trainer.env_step
                run.env_steps_done = trainer.env_step
                trainer.train(checkpoint=lambda t=trainer: self.save(t), progress=bar)
                for key, v in {**trainer.timing, "decoder_sampling": self.decoder.sampling_time}.items():
                    self.timing[key] = self.timing.get(key, 0.0) + v
                if k + 1 == cfg.num_stages:
                    run.save_policy("final", policy_state(trainer.agent, trainer.normalizer, stage=k,
                                                          env_step=trainer.env_step, decoder=self.decoder))
                if k + 1 < cfg.num_stages:
                    self.final = {"agent": copy.deepcopy(trainer.agent.state_dict()),
                                  "critic": copy.deepcopy(trainer.critic.state_dict()),
                                  "normalizer": copy.deepcopy(trainer.normalizer.state_dict())}
                    if not cfg.fresh_encoder_each_stage:
                        self.carry = {"agent": trainer.agent.state_dict(), "critic": trainer.critic.state_dict(),
                                      "normalizer": trainer.normalizer.state_dict()}
                    self.refit_decoder(k)
                    self.stage = k + 1
                    warm = cfg.for_stage(k + 1).encoder_init != "fresh"  # then stage k + 1 starts from it
                    handed = self.best if cfg.for_stage(k).encoder_handoff == "best" else self.final
                    self.previous_best, self.best = (handed if warm else None), None
                    self.save(None)
        run.extra_status.update(collection_env_steps=self.collection_env_steps,
                                timing_s={key: round(v, 3) for key, v in self.timing.items()})


def train(cfg: GoRLConfig, run: Run) -> GoRL:
    agent = GoRL(cfg, run)
    agent.train()
    return agent


def make_agent(cfg: GoRLConfig, obs_dim: int, act_dim: int, stage: int = 0, decoder: Decoder | None = None):
    """The policy module of a saved GoRL policy (gorl.load_policy): stage ``stage``'s encoder,
    its actions passed through ``decoder``."""
    return make_encoder(cfg, stage, obs_dim, act_dim, decoder)


GORL_FM = Algorithm(name="gorl_fm", config_cls=GoRLConfig, presets_file=PRESETS, train=train, label="GoRL (FM)",
                    color="#0173b2", family="gorl",
                    description="GoRL, latent PPO encoder + flow-matching decoder (spec 6)", make_agent=make_agent)
GORL_DIFFUSION = Algorithm(name="gorl_diffusion", config_cls=GoRLDiffusionConfig, presets_file=DIFFUSION_PRESETS,
                           train=train,
                           label="GoRL (Diffusion)", color="#d55e00", family="gorl",
                           description="GoRL, latent PPO encoder + diffusion decoder (spec 6)", make_agent=make_agent)
