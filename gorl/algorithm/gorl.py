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
to the one :class:`~gorl.core.run.Run`, which owns the run's records. The settings:
:class:`~gorl.algorithm.config.GoRLConfig` (gorl/algorithm/config.py).
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from gorl import rundir
from gorl.algorithm.config import GoRLConfig
from gorl.algorithm.decoder import Decoder, bounded_action, fit_decoder
from gorl.algorithm.episode_filter import episodes_of_rows, reference_blocks, rows_of_episodes, select_episodes, stage_seed
from gorl.core import jax_rollout
from gorl.core.gaussian_policy import GaussianPolicy
from gorl.core.loop import progress_bar
from gorl.core.normalizer import RunningNormalizer
from gorl.core.onpolicy import OnPolicyTrainer, env_action
from gorl.core.run import TRAIN_STREAM, Run, env_seeds, save_torch
from gorl.errors import ConfigError, Diverged, Gated
from gorl.policy import policy_state

COLLECT_STREAM = 2_000_000  # + stage: env seeds of the decoder-data collectors


# -- the encoder -------------------------------------------------------------------------
def make_decoder(cfg: GoRLConfig, obs_dim: int, act_dim: int, identity: bool = False) -> Decoder:
    """The decoder ``cfg`` describes: stage 0's identity decoder (``identity``; as
    ``stage0_decoder`` says) or the shell of a fitted one (weights from a fit or a checkpoint;
    the random ones it starts with are what tests and benchmarks drive an encoder through)."""
    return Decoder(cfg.decoder_kind, obs_dim, act_dim, cfg.decoder_hidden, cfg.decoder_steps,
                   identity=cfg.stage0_decoder if identity else False, output_scale=cfg.decoder_output_scale,
                   diffusion_form=cfg.diffusion_form)


def make_encoder(cfg: GoRLConfig, stage: int, obs_dim: int, act_dim: int, decoder: Decoder) -> GaussianPolicy:
    """Stage ``stage``'s Gaussian policy over z (dim d_a) whose actions pass through the
    frozen decoder (settings from :meth:`GoRLConfig.for_stage`); ``latent_bounded``: z = tanh
    of the Gaussian sample; ``action_semantics`` bounded: the env action is the decoder's output
    clipped to [-1, 1] (spec 14)."""
    scfg = cfg.for_stage(stage)
    decode = decoder.forward_bounded_latent if scfg.latent_bounded else decoder.forward
    encoder = GaussianPolicy(obs_dim, act_dim, scfg.actor_hidden, clip_eps=scfg.clip_eps,
                             entropy_coef=scfg.entropy_coef, entropy_tanh_correction=scfg.latent_bounded,
                             scale_cap=scfg.scale_cap, latent_reg=scfg.latent_reg,
                             latent_reg_coef=scfg.latent_reg_coef, decode=decode)
    if scfg.action_semantics == "bounded":  # the decoder's output is the action: a final [-1, 1] clip
        encoder.env_action = bounded_action
    return encoder


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
    if scan is not None:
        obs_rows, act_rows, done_rows, reward_rows, return_rows = jax_rollout.collect_rows(envs, scan, normalizer,
                                                                                           steps)
        if cfg.action_semantics == "bounded":  # the decoder's target: the env action (as below)
            act_rows = env_action(encoder, act_rows)
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


def _release_batch_through_the_scan(envs, scan, normalizer, active: torch.Tensor, every: int, bounded: bool,
                                    latent_bounded: bool):
    """One batch of :func:`collect_release_data` as one scan from the envs' fresh reset: the rows
    the per-step loop records (obs, decoder target, latent, whether the env's episode still ran;
    each (E, n, ...)), the returns it sums and the n steps it runs (to the first check, every ``every``
    steps, where no episode runs). The scan runs the time limit's steps rounded up to a check, so
    it may run past n; torch's generator is then set back and advanced by n steps' draws, as the
    loop leaves it."""
    before = jax_rollout.generator(active.device).get_state()
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
        jax_rollout.keep_draws(scan, before, n, envs.num_envs, active.device)
    r, kept = reward[:n].cpu().numpy(), ran[:n].cpu().numpy()
    ret = np.zeros(r.shape[1])
    for s in range(n):  # the loop's float64 sum, in its order
        ret += r[s] * kept[s]
    target = bounded_action(pre) if bounded else pre  # as the loop's target (action_semantics bounded)
    z = torch.tanh(stored["x"]) if latent_bounded else stored["x"]  # what the decoder received
    rows = {"obs": obs, "action": target, "latent": z, "active": ran}
    return {k: v[:n].transpose(0, 1) for k, v in rows.items()}, torch.as_tensor(ret, device=active.device), n


@torch.no_grad()
def collect_release_data(cfg: GoRLConfig, run: Run, stage: int, encoder: GaussianPolicy,
                         normalizer: RunningNormalizer) -> dict:
    """The release's decoder data: ``collect_episodes`` complete episodes, ``collect_envs`` at a
    time, each from a fresh reset (episode i seeded by the i-th seed of the stage's collection
    stream), acting z ~ N(mu, sigma), a = g(s, z); every row until the episode ends, no filter.
    Returns obs, pre-action, latent z and episode id per row, and the summary."""
    t_start = time.perf_counter()
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
    batch_s = []  # seconds per batch, each ending with its host copies (the first compiles the scan)
    setup_s = time.perf_counter() - t_start  # the env set and the act rule's program
    for first in range(0, n_eps, E):
        t0 = time.perf_counter()
        m = min(E, n_eps - first)  # the last batch's extra envs run but are not recorded
        obs = envs.reset(seeds[first:first + E])
        active = torch.arange(E, device=run.device) < m
        ret = torch.zeros(E, dtype=torch.float64, device=run.device)
        steps: dict[str, list] = {"obs": [], "action": [], "latent": [], "active": []}
        if scan is not None:
            steps, ret, n = _release_batch_through_the_scan(envs, scan, normalizer, active, CHECK_EVERY,
                                                            cfg.action_semantics == "bounded", cfg.latent_bounded)
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
        batch_s.append(round(time.perf_counter() - t0, 3))
    t_joined = time.perf_counter()
    envs.close()
    # each array's pieces go as it is joined, and rows are copied out only where some are not
    # finite (4.1M rows per stage in `paper`; the peak measured with bench_memory.py did not move)
    data = {k: torch.cat(pieces.pop(k)).numpy() for k in list(pieces)}
    returns, lengths = np.concatenate(returns), np.concatenate(lengths)
    finite = np.isfinite(data["action"]).all(1) & np.isfinite(data["obs"]).all(1)
    dropped = int((~finite).sum())
    if dropped:
        data = {k: v[finite] for k, v in data.items()}
    act = data["action"]
    data["summary"] = {"stage": stage, "rows": int(act.shape[0]), "dropped_non_finite": dropped,
                       "env_steps": int(env_steps), "envs": E, "episodes_finished": int(n_eps),
                       "episode_return_mean": float(returns.mean()), "episode_length_mean": float(lengths.mean()),
                       "batch_s": batch_s, "setup_s": round(setup_s, 3),
                       "assemble_s": round(time.perf_counter() - t_joined, 3),  # closing the envs, joining the rows
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
        return make_decoder(self.cfg, self.obs_dim, self.act_dim, identity)

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
        self.teacher = {"teacher_run": summary["teacher_run"], "teacher_policy_sha256": summary["teacher_policy_sha256"],
                        "teacher_env_steps": summary["teacher_env_steps"],
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
                                       prior_rows=self.decoder_rows, log=self.run.log)
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
                # the stage's envs go now, not when the cycle collector finds the trainer: the
                # collection and the next stage's trainer build their own (2048 of them in `paper`)
                trainer.close()
                del trainer
                if k + 1 < cfg.num_stages:
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
