"""GoRL's settings and registry entries: importable without torch.

:class:`GoRLConfig` holds every hyperparameter of GoRL (the shared PPO machinery's, the
stages', the collector's and the decoder's; defaults: the ``paper`` preset of
gorl/presets/gorl_fm.yaml), :class:`DecoderFitConfig` one decoder fit's. The registry entries
name the algorithm (gorl/algorithm/gorl.py) lazily (:class:`~gorl.registry.Lazy`), so that
reading the registry, which the pipeline's Snakefile and ``gorl-bench plan`` do, loads no torch.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gorl.algorithm.episode_filter import FILTER_UNITS, FILTERS, stage_seed
from gorl.config import defaults_from
from gorl.core.onpolicy_config import OnPolicyConfig
from gorl.errors import ConfigError
from gorl.registry import Algorithm, Lazy

DECODER_KINDS = ("fm", "diffusion")
DIFFUSION_FORMS = ("v1", "release")
"""'v1': cosine abar over indices, epsilon prediction, T - 1 DDIM steps (spec 6.5); 'release':
linear abar(t) = 1e-3 + (1 - 1e-3)(1 - t) and the identity-centred epsilon-delta
parameterisation, T steps (gorl.generative.diffusion)."""
IDENTITY_KINDS = ("zero_network", "exact")
"""Stage 0's decoder: 'zero_network' (v1: the sampler run on an all-zero network, which is z
for FM and 1.052 z for v1's diffusion) or 'exact' (the release's IdentityDecoder: z)."""
FIT_SCHEDULES = ("epochs", "steps")
SPLITS = ("transition", "episode")
CHECKPOINT_METRICS = ("val_loss", "val_endpoint_mse")


@dataclass
class DecoderFitConfig:
    hidden: list[int]
    steps: int
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    mc_samples: int
    max_samples: int
    val_fraction: float
    max_val_batches: int
    schedule: str = "epochs"
    """'epochs' (v1): permutation epochs, validation once per epoch, early stopping after
    ``patience``; 'steps' (release): ``train_steps`` batches drawn with replacement, validation
    at steps 0, 1, every ``eval_interval`` and the last, no early stopping."""
    train_steps: int | None = None
    """'steps': optimiser steps; None = max_epochs x floor(n_train / batch) (the release's epochs)."""
    eval_interval: int = 100
    checkpoint_metric: str = "val_loss"
    """The validation number whose lowest value is kept: 'val_loss' or 'val_endpoint_mse'
    (MSE of validation actions decoded from z ~ N(0, I); computed by the 'steps' schedule)."""
    split: str = "transition"
    """Validation split by 'transition' (v1) or by whole 'episode' (release)."""
    target_clip: float | None = None
    """Clip the pre-tanh targets to [-c, c] before the split (release: 3)."""
    zero_init_last: bool = False
    output_scale: float = 1.0
    diffusion_form: str = "v1"
    pairwise_weight: float = 0.0
    """Weight of mean (g(s, z_stored) - a)^2, the decoder run from the collector's latent (release diffusion: 1e-3)."""
    val_redraw: bool = False
    """'steps': draw the validation batches and their noise anew at every validation, and the
    endpoint rows one at random per equal interval (the release's FishSwim FM,
    ``rng_schedule = legacy_interleaved``), instead of fixed batches and evenly spaced rows."""
    compiled: bool = False
    """The optimiser step (loss, backward, Adam) through torch.compile, CUDA graphs on CUDA
    (``compile_update``, :mod:`gorl.core.compiled`): the same random numbers, results equal up
    to float rounding."""
    captured: bool = False
    """On CUDA (``cuda_graph: epoch``, :class:`gorl.core.compiled.Captured`): the release's schedule
    captures each run of ``eval_interval`` steps between two validations once as one CUDA graph and
    replays it, the epochs schedule each epoch's steps; their rows and noise drawn ahead, as the same
    numbers, into static tensors the graph reads."""


PRESETS = Path(__file__).parent.parent / "presets" / "gorl_fm.yaml"
DIFFUSION_PRESETS = PRESETS.with_name("gorl_diffusion.yaml")
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
    (then ``encoder_init`` must be 'fresh' in every stage). Not the release's key of this name:
    its ``[ppo] fresh_encoder_each_stage = false`` is ``encoder_init: warm_start`` here (from the
    previous stage's best encoder), with this key true."""
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
                                pairwise_weight=self.decoder_pairwise_weight, val_redraw=self.decoder_val_redraw,
                                compiled=self.compile_update, captured=self.cuda_graph == "epoch")

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


GORL_FM = Algorithm(name="gorl_fm", config_cls=GoRLConfig, presets_file=PRESETS, train=Lazy("gorl.algorithm.gorl:train"),
                    make_agent=Lazy("gorl.algorithm.gorl:make_agent"), label="GoRL (FM)", color="#0173b2",
                    family="gorl", description="GoRL, latent PPO encoder + flow-matching decoder (spec 6)")
GORL_DIFFUSION = Algorithm(name="gorl_diffusion", config_cls=GoRLDiffusionConfig, presets_file=DIFFUSION_PRESETS,
                           train=Lazy("gorl.algorithm.gorl:train"), make_agent=Lazy("gorl.algorithm.gorl:make_agent"),
                           label="GoRL (Diffusion)", color="#d55e00", family="gorl",
                           description="GoRL, latent PPO encoder + diffusion decoder (spec 6)")
