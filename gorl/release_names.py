"""The authors' release names its settings by TOML table and key (bennidict23/GoRL 8a0209c5,
``configs/methods/*.toml`` and ``configs/tasks/*.toml``: ``[ppo] clip_epsilon``, ``[decoder]
learning_rate``, ``[profile_overrides.dm_control.ppo.stage0] z_regularization``, ...); this suite
names them as its config classes do. A researcher with the release's files open types their
names: :func:`hint` says, after "unknown key", which key here has that role, or why none does.

The names come from the fact table of the release's six-task configs
(``tests/data/release_8a0209c5.csv``, which a test holds this module to) and from its humanoid
profile (``profile_overrides.humanoid`` in the method files, ``HumanoidRun.toml`` and
``HumanoidStand.toml``; spec 14).
"""
from __future__ import annotations

import re
from collections.abc import Collection

NAMES: dict[str, tuple[str, ...]] = {
    # "table.key" of the release -> this suite's key; several: the first one an algorithm has
    # (the release's [decoder] samples_per_action is GoRL-FM's decoder_mc_samples, FPO's num_mc_samples)
    "training.total_env_steps": ("total_steps",),
    "ppo.clip_epsilon": ("clip_eps",),
    "ppo.entropy_cost": ("entropy_coef",),
    "ppo.discounting": ("gamma",),
    "ppo.value_loss_coeff": ("value_loss_coef",),
    "ppo.num_eval_envs": ("eval_episodes",),
    "ppo.num_updates_per_batch": ("num_epochs",),
    "ppo.encoder_initialization": ("encoder_init",),
    "ppo.observation_stats_accumulation": ("obs_norm_mode",),
    "ppo.observation_stats_timing": ("obs_stats_timing",),
    "ppo.z_regularization": ("latent_reg_coef",),
    "ppo.policy_scale_cap": ("scale_cap",),
    "ppo.tanh_entropy_correction": ("entropy_tanh_correction",),
    "collection.episodes": ("collect_episodes",),
    "collection.num_envs": ("collect_envs",),
    "decoder.learning_rate": ("decoder_learning_rate",),
    "decoder.batch_size": ("decoder_batch_size",),
    "decoder.hidden_sizes": ("decoder_hidden",),
    "decoder.train_steps": ("decoder_train_steps",),
    "decoder.epochs": ("decoder_max_epochs",),
    "decoder.target_clip": ("decoder_target_clip",),
    "decoder.samples_per_action": ("decoder_mc_samples", "num_mc_samples"),
    "decoder.diffusion_steps": ("decoder_steps", "flow_steps"),
    "decoder.checkpoint_metric": ("decoder_checkpoint_metric",),
    "decoder.split_unit": ("decoder_split",),
    "decoder.batch_sampling": ("decoder_fit_schedule",),
    "decoder.validation_schedule": ("decoder_fit_schedule",),
    "decoder.rng_schedule": ("decoder_val_redraw",),
    "decoder.zero_final_layer": ("decoder_zero_init_last",),
    "decoder.output_scale": ("decoder_output_scale",),
    "decoder.policy_output_scale": ("output_scale",),
    "decoder.pairwise_loss_weight": ("decoder_pairwise_weight",),
    "decoder.sde_sigma": ("noise_std",),
    "decoder.eval_interval": ("decoder_eval_interval",),
    "decoder.eval_batches": ("decoder_max_val_batches",),
    "decoder.max_transitions": ("decoder_max_samples",),
    "decoder.validation_fraction": ("decoder_val_fraction",),
    "evaluation.episodes": ("eval_episodes",),
    # FPO's and DPPO's flow sample (eval_mode); PPO's and GoRL's mean or sample (the humanoid profile's false)
    "evaluation.deterministic": ("eval_mode", "eval_deterministic"),
    # the humanoid profile (spec 14)
    "ppo.bounded_latent": ("latent_bounded",),
    "collection.action_semantics": ("action_semantics",),
    "decoder.target": ("action_semantics",),
    "environment.action_semantics": ("action_semantics",),
    "decoder.early_stopping_patience": ("decoder_patience",),
    "decoder.initialization": ("decoder_init",),
    "training.benchmark_start_env_steps": ("benchmark_start_steps",),
    "training.teacher_dataset_min_return_mean": ("teacher_min_return",),
    "training.stage0_encoder_initialization": ("teacher_warm_start",),
}
"""The release's settings that have a key here under another name (a release key spelled as a key
here, ``[ppo] learning_rate``, is not listed: :func:`hint` names it as it is)."""

VALUES: dict[tuple[str, str], str] = {
    # (release key, key here) -> how the release's values read here, where they are spelled otherwise
    ("evaluation.deterministic", "eval_mode"): "its true is 'stochastic' (x_1 stays random, spec 1.4)",
    ("decoder.batch_sampling", "decoder_fit_schedule"): "its 'with_replacement' is 'steps', 'epoch_permutation' 'epochs'",
    ("decoder.validation_schedule", "decoder_fit_schedule"):
        "its 'interval_sampled' is 'steps', 'epoch_full_batches' 'epochs'",
    ("decoder.rng_schedule", "decoder_val_redraw"): "its 'independent_streams' is false, 'legacy_interleaved' true",
    ("decoder.target_clip", "decoder_target_clip"): "its 0.0 (no clip) is null",
    ("ppo.observation_stats_accumulation", "obs_norm_mode"): "its 'cumulative' is 'welford', 'legacy_batch_only' 'legacy'",
    ("ppo.observation_stats_timing", "obs_stats_timing"):
        "its 'rollout_consistent' is 'rollout', 'legacy_pre_update' 'pre_update'",
    ("training.stage0_encoder_initialization", "teacher_warm_start"): "its 'teacher_warm_start' is true",
    ("decoder.target", "action_semantics"): "its 'action_pre_tanh' is 'pre_tanh', 'action_bounded' 'bounded'",
}
"""Where the release spells a value otherwise (read from the release's fact table and the humanoid
profile): said after the key here."""

_GORL, _FLOW_POLICY, _DPPO = "stage_steps", "flow_steps", "noise_std"  # GoRL; FPO and DPPO; DPPO
NOT_SETTINGS: dict[str, tuple[str, str | None]] = {
    # release key -> (why no key here, the field of the algorithms that reason is about: None for all)
    "ppo.episode_length": ("every paper task's time limit is 1000 steps (spec 1.2)", None),
    "ppo.normalize_observations": ("observations are always normalised (obs_norm_mode chooses how, spec 2.2)", None),
    "ppo.action_repeat": ("no action repeat (spec 1.2)", None),
    "ppo.entropy_cost": ("FPO and DPPO have no entropy bonus (spec 4, 5)", _FLOW_POLICY),
    "ppo.tanh_entropy_correction": ("GoRL's encoder has no tanh entropy term (spec 6.2)", _GORL),
    "ppo.latent_dim": ("the latent has as many dimensions as the action (spec 6)", _GORL),
    "environment.action_semantics": ("the env receives tanh(pre-action) (spec 1.2)", None),
    "decoder.samples_per_action": ("DPPO's loss uses the stored denoising chain, no (eps, t) samples (spec 5)", _DPPO),
    "decoder.output_mode": ("velocity output supervised as in the FPO code (spec 4)", _FLOW_POLICY),
    "decoder.timestep_embedding_dim": ("8-dim sin/cos time embedding (spec 4)", _FLOW_POLICY),
    "decoder.type": ("the algorithm itself", None),
    "decoder.convention": ("z at t = 1 integrated to t = 0, as v1 (spec 6.4)", _GORL),
    "decoder.normalize_observations": ("the decoder normalises observations with its training split's statistics "
                                       "(spec 6.4)", _GORL),
    "collection.stochastic": ("the collector samples z (spec 6.3)", _GORL),
    "collection.seed_offset": ("rollout seed = seed + 1 in the release's JAX streams; torch seeds its own streams "
                               "(seed_scheme, spec 13)", _GORL),
    "environment.suite": ("dm_control suite tasks (spec 1.1)", None),
    "environment.backend": ("Playground's MJX ports are the playground: tasks (spec 1.1, 12.12)", None),
}
"""The release's settings with no key here: why, and for which algorithms (those whose config has
the field named; where :data:`NAMES` has a key for other algorithms, this is what an algorithm
without it is told). Any other algorithm is told it has no such setting."""

TABLES = ("training", "ppo", "decoder", "collection", "evaluation", "environment", "runtime")
"""The release's tables: ``[ppo] learning_rate`` typed as ``ppo.learning_rate`` is 'learning_rate' here."""
STAGED = _GORL
"""The field of an algorithm with stages (GoRL): per-stage keys (``stage0.KEY``) are its only."""

_PREFIX = re.compile(r"(?:profile_overrides\.[^.]+\.|method_overrides\.[^.]+\.)?")
_STAGE = re.compile(r"stage\d+|later_stages")


def hint(name: str, fields: Collection[str] | None = None) -> str:
    """What follows "unknown key 'NAME'" where NAME is the release's: `` (the release's [ppo]
    clip_epsilon is 'clip_eps' here)``; a stage table's key keeps its stage (``ppo.stage0.KEY`` ->
    ``stage0.OURS``, for an algorithm with stages); a bare key (``z_regularization``) names each
    table that has it; where the values are spelled otherwise, how (:data:`VALUES`). ``fields``:
    the algorithm's keys (None: any algorithm's). Empty where NAME is none of the release's."""
    parts = _PREFIX.sub("", name, count=1).split(".")
    stage = parts.pop(-2) if len(parts) >= 3 and _STAGE.fullmatch(parts[-2]) else None
    if len(parts) > 2 or (len(parts) == 2 and parts[0] not in TABLES):
        return ""
    known = dict.fromkeys([*NAMES, *NOT_SETTINGS])
    matches = [k for k in known if k == ".".join(parts)] if len(parts) == 2 else \
        [k for k in known if k.split(".", 1)[1] == parts[0]]
    same = not matches and len(parts) == 2 and fields is not None and parts[1] in fields
    if same:  # the release's name is the key here
        matches = [".".join(parts)]
    staged = fields is None or STAGED in fields
    said = []
    for key in matches:
        ours = [parts[1]] if same else [o for o in NAMES.get(key, ()) if fields is None or o in fields]
        if ours:
            table, leaf = key.split(".", 1)
            ours = ours[:1] if fields is not None else ours
            keys = " or ".join(repr(f"{stage}.{o}" if stage and staged else o) for o in ours)
            value = "; ".join(VALUES[key, o] for o in ours if (key, o) in VALUES)
            said.append(f"[{table}{'.' + stage if stage else ''}] {leaf} is {keys} here{': ' + value if value else ''}")
    if said:
        whole = " (this algorithm has no stages: a key holds for the whole run)" if stage and not staged else ""
        return f" (the release's {'; its '.join(said)}){whole}"
    for key in matches:
        reason, about = NOT_SETTINGS.get(key, (None, None))
        if reason is not None and (fields is None or about is None or about in fields):
            table, leaf = key.split(".", 1)
            return f" (the release's [{table}] {leaf} is not a setting here: {reason})"
    if matches and len(parts) == 2:  # the release's table.key of other algorithms (a decoder's, to PPO)
        table, leaf = matches[0].split(".", 1)
        return f" (the release's [{table}] {leaf}: this algorithm has no such setting)"
    return ""
